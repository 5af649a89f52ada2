from pathlib import Path

import pytest

import simam_paddle
from subprocesses import run_python

ROOT = Path(__file__).resolve().parents[1]


def _pyproject() -> dict:
    """pyproject.toml, parsed; only the tests that read it skip before Python 3.11 (no tomllib)."""
    tomllib = pytest.importorskip("tomllib")
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def test_all_names_resolve():
    for name in simam_paddle.__all__:
        assert hasattr(simam_paddle, name), name
    assert len(set(simam_paddle.__all__)) == len(simam_paddle.__all__)


def test_pyproject_never_pulls_a_paddle_wheel():
    # Both wheels provide `paddle`; a hard dependency would install the CPU one over a GPU one.
    meta = _pyproject()["project"]
    assert not any(dep.lower().startswith("paddlepaddle") for dep in meta["dependencies"])
    assert any(d.startswith("paddlepaddle-gpu") for d in meta["optional-dependencies"]["gpu"])


def test_the_version_is_written_once():
    # pyproject.toml reads the version from the package, so the installed metadata cannot disagree with
    # simam_paddle.__version__; setuptools resolves it here exactly as pip does when it builds the metadata.
    meta = _pyproject()
    assert "version" not in meta["project"] and "version" in meta["project"]["dynamic"]
    assert meta["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "simam_paddle.__version__"}
    pyprojecttoml = pytest.importorskip("setuptools.config.pyprojecttoml")
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # [tool.setuptools] in pyproject.toml is "beta" to setuptools < 68
        resolved = pyprojecttoml.read_configuration(ROOT / "pyproject.toml")["project"]["version"]
    assert resolved == simam_paddle.__version__


def test_import_has_no_side_effects():
    # Importing must not choose a device, set threads or print.
    code = (
        "import paddle; before = paddle.device.get_device(); "
        "import simam_paddle; assert paddle.device.get_device() == before, 'device changed'"
    )
    out = run_python(code)
    assert out.returncode == 0, out.stderr
    assert out.stdout == ""


# --- The layered architecture: experiments -> plots -> engine -> models -> layers; data, the run settings
# (config) and the private helper modules (_io, _legacy, _paddle, ...) are usable by every layer and import
# none of them.
PACKAGE = ROOT / "simam_paddle"
RANK = {"layers": 0, "models": 1, "engine": 2, "plots": 3, "experiments": 4, "cli": 5, "__main__": 5}
SHARED = ("data", "config")


def _owner(module: str) -> str:
    """'simam_paddle.models.zoo' -> 'models'; top-level helper modules are their own owners."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _imports(path: Path, root: Path = ROOT):
    """(imported module, imported names) for every import in a file, relative imports resolved."""
    import ast

    package = list(path.relative_to(root).parts[:-1])  # a module's package is its folder, __init__.py's too
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            yield module, [alias.name for alias in node.names]
        elif isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, []


def _violations():
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        here = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        owner = _owner(here)
        for module, names in _imports(path):
            if not module.startswith("simam_paddle"):
                continue
            target = _owner(module)
            if target in RANK and owner in RANK and RANK[target] > RANK[owner]:
                found.append(f"{here} imports {module} (upward)")
            if owner not in RANK and (owner in SHARED or owner.startswith("_")):
                if target in RANK:
                    found.append(f"{here} imports {module} (data, config and helpers import no layer)")
            same_module = module == here or (path.name == "__init__.py" and module.startswith(here))
            for name in names:
                if name.startswith("_") and not same_module and module.count(".") >= 1 \
                        and not module.split(".")[-1].startswith("_"):
                    found.append(f"{here} imports private {module}.{name}")
    return found


def test_imports_run_one_way_and_touch_no_private_names():
    assert _violations() == []


def test_the_graph_check_can_fail(tmp_path, monkeypatch):
    bad = PACKAGE / "layers" / "_graph_probe_tmp.py"
    bad.write_text("from ..experiments.runs import _datasets\n", encoding="utf-8")
    try:
        found = _violations()
    finally:
        bad.unlink()
    assert any("upward" in v for v in found) and any("private" in v for v in found)


def _module_name(path: Path, root: Path) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _import_cycles(package: Path = PACKAGE):
    """Every cycle of the package's import graph, as 'a -> b -> a'.

    Imports inside functions count: one that waits for a call still makes two modules depend on each other.
    ``from . import x`` is an import of the module ``x`` where there is one, not of the package.
    """
    root = package.parent
    modules = {_module_name(path, root): path for path in sorted(package.rglob("*.py"))}
    graph = {}
    for name, path in modules.items():
        targets = set()
        for module, names in _imports(path, root):
            submodules = [f"{module}.{n}" for n in names if f"{module}.{n}" in modules]
            targets.update(submodules or ([module] if module in modules else []))
        graph[name] = sorted(targets - {name})
    cycles, finished = [], set()

    def visit(path):  # depth first; an edge back into the path closes a cycle
        for target in graph[path[-1]]:
            if target in path:
                cycles.append(" -> ".join(path[path.index(target):] + [target]))
            elif target not in finished:
                visit(path + [target])
        finished.add(path[-1])

    for name in graph:
        if name not in finished:
            visit([name])
    return cycles


def test_no_import_cycles():
    assert _import_cycles() == []


def test_the_cycle_check_can_fail(tmp_path):
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("", encoding="utf-8")
    (package / "sub" / "__init__.py").write_text("from .a import f\n", encoding="utf-8")
    (package / "sub" / "a.py").write_text("from . import b\n\ndef f():\n    pass\n", encoding="utf-8")
    (package / "sub" / "b.py").write_text("def g():\n    from .a import f\n", encoding="utf-8")
    (package / "c.py").write_text("from .sub import a\n", encoding="utf-8")  # importing one is no cycle
    assert _import_cycles(package) == ["pkg.sub.a -> pkg.sub.b -> pkg.sub.a"]


def test_every_callback_lives_in_engine_callbacks():
    import ast

    elsewhere = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path == PACKAGE / "engine" / "callbacks.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef) and any("Callback" in ast.unparse(b) or "ProgBarLogger" in ast.unparse(b)
                                                      or "VisualDL" in ast.unparse(b) for b in node.bases):
                elsewhere.append(f"{path.relative_to(ROOT)}: {node.name}")
    assert elsewhere == []


def test_no_function_is_over_100_lines():
    import ast

    long = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno >= 100:
                long.append(f"{path.relative_to(ROOT)}: {node.name} ({node.end_lineno - node.lineno + 1} lines)")
    assert long == []


def test_top_level_exports_stay_few():
    assert len(simam_paddle.__all__) <= 25


def test_help_does_not_import_paddle():
    code = ("import sys, runpy; sys.argv = ['simam_paddle', '--help']\n"
            "try:\n    runpy.run_module('simam_paddle', run_name='__main__')\n"
            "except SystemExit:\n    pass\n"
            "print('paddle' in sys.modules)")
    out = run_python(code)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "False"


@pytest.mark.parametrize("old, new", [("zoo", "models.zoo"), ("training", "engine.training"),
                                      ("runs", "experiments.runs"), ("plots", "plots")])
def test_old_module_paths_still_import_and_name_the_new_place(old, new):
    import importlib

    with pytest.warns(DeprecationWarning, match=f"simam_paddle.{new}") if old != new else _nothing():
        module = importlib.import_module(f"simam_paddle.{old}")
    now = importlib.import_module(f"simam_paddle.{new}")
    public = [name for name in getattr(now, "__all__", []) if not name.startswith("_")]
    assert public and all(getattr(module, name) is getattr(now, name) for name in public)


@pytest.mark.parametrize("statement", [
    "from simam_paddle.callbacks import read_history, SaveBestModel",  # read_history left callbacks
    "from simam_paddle.training import evaluate, train",  # evaluate left training
    "from simam_paddle.evaluation import plot_confusion_matrix",  # a figure, now in plots
    "from simam_paddle.report import plot_mean_curves",
])
def test_names_that_left_their_old_module_still_import(statement):
    code = f"import warnings; warnings.simplefilter('ignore'); {statement}"
    out = run_python(code)
    assert out.returncode == 0, out.stderr


def test_a_name_that_never_existed_names_the_new_place():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import simam_paddle.zoo as zoo
    with pytest.raises(AttributeError, match="simam_paddle.models.zoo"):
        zoo.no_such_builder


def test_old_top_level_names_still_resolve_and_name_the_new_place():
    from simam_paddle.engine import make_optimizer

    with pytest.warns(DeprecationWarning, match="simam_paddle.engine"):
        assert simam_paddle.make_optimizer is make_optimizer
    with pytest.raises(AttributeError, match="no_such_name"):
        simam_paddle.no_such_name


def test_the_old_paths_say_when_they_go_and_go_by_then():
    import importlib
    import sys

    from simam_paddle._legacy import REMOVED_IN

    sys.modules.pop("simam_paddle.ablation", None)
    with pytest.warns(DeprecationWarning, match=f"removed in {REMOVED_IN}"):
        importlib.import_module("simam_paddle.ablation")
    with pytest.warns(DeprecationWarning, match=f"removed in {REMOVED_IN}"):
        simam_paddle.__getattr__("make_optimizer")
    # A release at or past REMOVED_IN still carrying _legacy.py fails here: remove it (with MOVED_NAMES and LEGACY_MODULES) first.
    version = tuple(int(part) for part in simam_paddle.__version__.split(".")[:3])
    assert version < tuple(int(part) for part in REMOVED_IN.split("."))


def _nothing():
    import contextlib

    return contextlib.nullcontext()


def test_patching_through_an_old_path_patches_the_module_in_use(monkeypatch):
    import warnings

    from simam_paddle.layers import fused as now

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from simam_paddle import fused as old
    original = now._build
    sentinel = object()
    monkeypatch.setattr(old, "_build", sentinel)
    assert now._build is sentinel
    # Undoing the patch (pytest >= 9.2 undoes it with delattr on the module patched) restores the module's own.
    monkeypatch.undo()
    assert now._build is original


def test_deleting_a_name_patched_through_an_old_path_restores_the_first_value():
    import warnings

    from simam_paddle.layers import fused as now

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from simam_paddle import fused as old
    original = now._build
    try:
        old._build = "first patch"
        old._build = "second patch"
        assert now._build == "second patch"
        del old._build
        assert now._build is original
    finally:
        now._build = original
