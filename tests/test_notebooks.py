"""The notebooks: thin (no def/class), committed with clean outputs, and executable top to bottom in the smoke profile.

The committed outputs come from the ``cpu`` profile; they must hold no error, no stderr (warnings), no
machine path and no execution timestamps. The execution tests run each notebook as Jupyter would (a
kernel with cwd ``notebooks/``), with ``SIMAM_QUICK=1`` (the older switch, meaning the smoke profile)
and data and runs in a temporary folder (``SIMAM_DATA``, ``SIMAM_RUNS``), so they
never see or change ``data/`` and ``runs/`` of the checkout. The kernel imports this checkout's
package through ``PYTHONPATH``, installed or not.
"""
import json
import os
import re
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = ROOT / "notebooks"
NOTEBOOKS = ["01_dataset_split", "02_baselines", "03_towernet_simam", "04_compare"]
# What a notebook reads from earlier ones (04 compares the runs of 02 and 03).
NEEDS = {"04_compare": ["02_baselines", "03_towernet_simam"]}
MAX_BYTES = 1_500_000
DEFINITION = re.compile(r"^\s*(async\s+def|def|class)\s", re.MULTILINE)


def _read(name):
    return nbformat.read(NOTEBOOK_DIR / f"{name}.ipynb", as_version=4)


def _code_cells(nb):
    return [cell for cell in nb.cells if cell.cell_type == "code"]


def test_every_notebook_is_listed():
    assert sorted(p.stem for p in NOTEBOOK_DIR.glob("*.ipynb")) == NOTEBOOKS


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_no_code_cell_defines_a_function_or_class(name):
    offending = [cell.source for cell in _code_cells(_read(name)) if DEFINITION.search(cell.source)]
    assert not offending, f"{name}: move these into simam_paddle (with tests):\n" + "\n---\n".join(offending)


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_is_committed_with_outputs(name):
    # The repository page shows the notebooks as committed: every code cell ran, in order, without
    # an error, and the figures are there.
    nb = _read(name)
    cells = _code_cells(nb)
    assert [cell.execution_count for cell in cells] == list(range(1, len(cells) + 1)), \
        f"{name} is not committed fully executed in order; execute it top to bottom before committing"
    outputs = [out for cell in cells for out in cell.outputs]
    assert not [out for out in outputs if out.output_type == "error"]
    assert any("image/png" in out.get("data", {}) for out in outputs)
    assert (NOTEBOOK_DIR / f"{name}.ipynb").stat().st_size < MAX_BYTES


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_first_cell_states_intent_then_configuration(name):
    nb = _read(name)
    assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith("# ")
    config = nb.cells[1]
    assert config.cell_type == "code" and "notebook_profile()" in config.source


# Absolute paths of this or any machine: /home/..., /root/..., /tmp/..., /work/..., C:\...
MACHINE_PATH = re.compile(r"(?<![\w.])(/(home|root|tmp|work|usr|opt|Users|private|var)/|[A-Za-z]:\\)")


def _output_texts(nb):
    for cell in _code_cells(nb):
        for out in cell.outputs:
            if out.output_type == "stream":
                yield out.name, out.text
            elif out.output_type in ("execute_result", "display_data"):
                for kind, value in out.get("data", {}).items():
                    if kind.startswith("text/"):
                        yield kind, value if isinstance(value, str) else "".join(value)


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_committed_outputs_are_clean(name):
    nb = _read(name)
    stderr = [text for kind, text in _output_texts(nb) if kind == "stderr"]
    assert not stderr, f"{name} has stderr output (a warning?) in its committed outputs:\n" + "\n".join(stderr)
    paths = [text for _, text in _output_texts(nb) if MACHINE_PATH.search(text)]
    assert not paths, f"{name} shows machine paths in its outputs:\n" + "\n".join(paths)
    assert not [cell for cell in nb.cells if "execution" in cell.metadata], f"{name} keeps execution timestamps"
    profile_lines = [text for kind, text in _output_texts(nb) if kind == "stdout" and text.startswith("profile: ")]
    assert profile_lines and profile_lines[0].startswith("profile: cpu "), \
        f"{name} is committed with another profile than cpu: {profile_lines[:1]}"


def test_committed_outputs_show_every_model_learning_well_above_chance():
    """The done-when of the CPU profile: notebook 04's table of every run of notebooks 02 and 03 (read back from
    their run folders) shows each model at three times chance or better on the 16 Caltech classes."""
    nb = _read("04_compare")
    tables = [out["data"]["text/markdown"] for cell in _code_cells(nb) for out in cell.outputs
              if "".join(out.get("data", {}).get("text/markdown", "")).startswith("| run |")]
    assert len(tables) == 1, "04_compare shows one table of runs (and the robustness table, which has no run column)"
    header, _, *rows = [[c.strip() for c in line.strip("|").split("|")] for line in tables[0].splitlines()]
    best = {row[header.index("run")]: float(row[header.index("best eval acc (%)")]) for row in rows}
    expected = {"vgg19", "resnet50", "mobilenet_v2", "towernet_simam", "towernet_none", "towernet_se"}
    assert set(best) == expected, f"04_compare's committed table lacks {sorted(expected - set(best))}"
    data = {row[header.index("data")] for row in rows}
    assert data == {"caltech16_split"}, f"04_compare's committed runs are on {data}, not the embedded Caltech-16"
    low = {run: acc for run, acc in best.items() if acc < 3 * 100 / 16}
    assert not low, f"committed runs near chance (6.25 %): {low}"


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_kernelspec_is_ipykernels_own(name):
    # JupyterLab writes the running kernel's spec into the notebook when the kernel starts; any other
    # name marks a notebook modified as soon as it opens, and autosave then rewrites the committed file.
    kernel_dict = pytest.importorskip("ipykernel.kernelspec").get_kernel_dict()
    expected = {"display_name": kernel_dict["display_name"], "language": kernel_dict["language"], "name": "python3"}
    assert dict(_read(name).metadata.kernelspec) == expected


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_intro_states_the_measured_time(name):
    intro = _read(name).cells[0].source
    assert "MEASURED" not in intro and re.search(r"\d+ (s|min)", intro), f"{name}: state the measured cpu-profile time"


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    """Executes notebooks once per test session, in order of need; maps name to the executed notebook."""
    from nbclient import NotebookClient

    work = tmp_path_factory.mktemp("notebooks")
    env = dict(os.environ)
    env.pop("SIMAM_PROFILE", None)  # SIMAM_QUICK=1 below must choose the smoke profile
    env.update(
        SIMAM_QUICK="1",
        MPLBACKEND="agg",
        SIMAM_DATA=str(work / "data"),
        SIMAM_RUNS=str(work / "runs"),
        PYTHONPATH=os.pathsep.join([str(ROOT)] + [p for p in [os.environ.get("PYTHONPATH")] if p]),
    )
    done = {}

    def run(name):
        for needed in NEEDS.get(name, []):
            if needed not in done:
                run(needed)
        nb = _read(name)
        client = NotebookClient(nb, timeout=600, kernel_name="python3", record_timing=False,
                                resources={"metadata": {"path": str(NOTEBOOK_DIR)}})
        client.execute(env=env)  # raises CellExecutionError, with the cell and traceback, on any error
        stderr = [text for kind, text in _output_texts(nb) if kind == "stderr"]
        assert not stderr, f"{name} writes to stderr when executed:\n" + "\n".join(stderr)
        done[name] = nb
        return nb

    return {"run": run, "done": done, "work": work}


def _stdout(nb):
    return "".join(out.get("text", "") for cell in _code_cells(nb) for out in cell.outputs
                   if out.output_type == "stream" and out.name == "stdout")


def _history_rows(run_dir):
    with open(run_dir / "history.csv", encoding="utf-8") as f:
        return len(f.read().splitlines()) - 1


@pytest.mark.slow
def test_01_dataset_split_executes(executed):
    nb = executed["run"]("01_dataset_split")
    data = executed["work"] / "data"
    assert (data / "digits_split" / "split_manifest.csv").is_file()
    assert len(list((data / "digits_split" / "eval").rglob("*.png"))) == 364
    assert "profile: smoke (SIMAM_QUICK=1" in _stdout(nb)
    assert "total     1433      364     1797" in _stdout(nb)
    clutter = data / "cluttered_digits"
    assert (clutter / "manifest.csv").is_file()
    assert len(list((clutter / "eval").rglob("*.png"))) == 364
    assert len(list((clutter / "train").rglob("*.png"))) == 1433


@pytest.mark.slow
def test_02_baselines_executes(executed):
    executed["run"]("02_baselines")
    runs = executed["work"] / "runs"
    for model in ("vgg19", "resnet50", "mobilenet_v2"):
        config = json.loads((runs / model / "config.json").read_text())
        assert (config["model"], config["image_size"], config["epochs"]) == (model, 32, 2)
        assert config["optimizer"] == ("adam" if model == "vgg19" else "momentum")
        assert _history_rows(runs / model) == 2
        assert (runs / model / "visualdl").is_dir()


@pytest.mark.slow
def test_03_towernet_simam_executes(executed):
    nb = executed["run"]("03_towernet_simam")
    runs = executed["work"] / "runs"
    for attention in ("simam", "none", "se"):
        run = runs / f"towernet_{attention}"
        config = json.loads((run / "config.json").read_text())
        assert (config["attention"], config["image_size"], config["seed"]) == (attention, 128, 0)
        assert _history_rows(run) == 3
        assert (run / "confusion_matrix.csv").is_file()
    images = sum("image/png" in out.get("data", {}) for cell in _code_cells(nb) for out in cell.outputs)
    assert images == 1 + 3 + 1 + 1  # curves, three attention maps, Grad-CAM, confusion matrix


@pytest.mark.slow
def test_04_compare_executes(executed):
    nb = executed["run"]("04_compare")
    text = _stdout(nb) + "".join(out.get("data", {}).get("text/markdown", "")
                                 for cell in _code_cells(nb) for out in cell.outputs)
    for run in ("vgg19", "resnet50", "mobilenet_v2", "towernet_simam", "towernet_none", "towernet_se"):
        assert run in text, f"04_compare does not show run {run}"
