"""Trained runs evaluated on corrupted copies of their evaluation images (see :mod:`simam_paddle.data.corruptions`).

Every run sees the same corrupted pixels (same images, corruption, severity and seed), so the runs of an
ablation can be compared seed by seed, as their clean accuracies are. With an output folder, the rows of each
finished condition are kept in ``robustness.partial.json`` until the end, so an interrupted evaluation run again
with the same settings goes on where it stopped. The record (``robustness.json``) says
what ran: the corruptions and their parameters, the seed, the images, the weights, and per run the Paddle
version, the device and how many convolutions ran on oneDNN.
"""
import contextlib
import csv
import hashlib
import io
import json
import os
from typing import Any, Dict, List, Optional, Sequence, Union

import numpy as np

from .._paddle import require_paddle

require_paddle()

import paddle  # noqa: E402

from .._io import atomic_write_text, read_text  # noqa: E402
from ..data.corruptions import SEVERITIES, available_corruptions, corrupt, corruption_parameters  # noqa: E402
from ..data.dataset import per_class_subset  # noqa: E402
from .runs import load_run, run_datasets, run_folders, run_kernels, run_transforms  # noqa: E402

__all__ = ["evaluate_robustness", "ROBUSTNESS_COLUMNS", "read_robustness"]

ROBUSTNESS_COLUMNS = ["run", "model", "attention", "seed", "corruption", "severity", "correct", "total", "acc"]
"""The columns of ``robustness.csv``: one row per run and condition; the clean images are ``clean``, severity 0."""


def _check_options(corruptions: Optional[Sequence[str]], severities: Sequence[int], seed: int) -> List[str]:
    names = available_corruptions() if corruptions is None else list(corruptions)
    unknown = [name for name in names if name not in available_corruptions()]
    if unknown or not names:
        raise ValueError(f"unknown corruption(s) {unknown or names}; available corruptions = "
                         f"{available_corruptions()}")
    if not severities or any(isinstance(s, bool) or s not in SEVERITIES for s in severities):
        raise ValueError(f"severities must be some of {list(SEVERITIES)}, got {list(severities)!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    return names


def _eval_images(config: Dict[str, Any], data: Optional[str], decode: bool = True):
    """The run's evaluation images at its input size (uint8, as the dataset decodes them; None unless ``decode``),
    their labels, their paths in the evaluation folder and that folder."""
    root = None
    if data is not None:
        if not os.path.isdir(data):
            raise FileNotFoundError(f"evaluation data {data!r} does not exist; give a class folder or a split folder")
        root = os.path.join(data, "eval") if os.path.isdir(os.path.join(data, "eval")) else data
    _, dataset = run_datasets({**config, "cache": False}, eval_root=root, train=False)
    if list(dataset.classes) != list(config["classes"]):
        raise ValueError(f"{dataset.root} holds classes {list(dataset.classes)}, but the run was trained on "
                         f"{config['classes']}")
    if root is None:
        dataset = per_class_subset(dataset, config.get("eval_per_class"))
    indices = getattr(dataset, "indices", range(len(dataset)))
    base = getattr(dataset, "dataset", dataset)
    images = [base.load(i) for i in indices] if decode else None
    labels = np.array([base.samples[i][1] for i in indices], dtype=np.int64)
    paths = [os.path.relpath(base.samples[i][0], base.root) for i in indices]
    return images, labels, paths, str(base.root)


def _same_images(root: str, other_root: str, paths: Sequence[str]) -> bool:
    """Whether two evaluation folders hold the same images under ``paths``: the same folder, or byte-equal files
    (two copies of one split); the same names in another split are not the same images."""
    import filecmp

    if os.path.realpath(root) == os.path.realpath(other_root):
        return True
    return all(filecmp.cmp(os.path.join(root, path), os.path.join(other_root, path), shallow=False)
               for path in paths)


def _correct(network, config: Dict[str, Any], images: Sequence[np.ndarray], labels: np.ndarray,
             batch_size: int) -> int:
    """How many of ``images`` the network classifies right, through the run's evaluation transforms."""
    from PIL import Image

    transform = run_transforms(config, train=False)
    correct = 0
    with paddle.no_grad():
        for start in range(0, len(images), batch_size):
            batch = np.stack([transform(Image.fromarray(a)) for a in images[start:start + batch_size]])
            logits = network(paddle.to_tensor(batch)).numpy()
            correct += int((logits.argmax(axis=1) == labels[start:start + batch_size]).sum())
    return correct


def evaluate_robustness(runs: Union[str, os.PathLike, Sequence[Union[str, os.PathLike]]],
                        output: Optional[Union[str, os.PathLike]] = None,
                        corruptions: Optional[Sequence[str]] = None, severities: Sequence[int] = SEVERITIES,
                        seed: int = 0, data: Optional[str] = None, batch_size: Optional[int] = None,
                        weights: str = "best", device: str = "auto", progress=None) -> Dict[str, Any]:
    """Accuracy of trained runs on their evaluation images, clean and corrupted.

    Args:
        runs (str|PathLike|list): run folders, or one folder holding them (an ablation's output).
        output (str|PathLike, optional): folder for ``robustness.csv`` and ``robustness.json``. Default: None
            (nothing written).
        corruptions (list[str], optional): names from :func:`simam_paddle.data.available_corruptions`.
            Default: None (all).
        severities (list[int], optional): some of 1..5. Default: all five.
        seed (int, optional): fixes the random parts of the corruptions. Default: 0.
        data (str, optional): a class folder, or a split folder whose ``eval/`` is used. Default: None (each
            run's own evaluation data, which must then be the same images for every run).
        batch_size (int, optional): Default: None (each run's).
        weights (str, optional): "best" or "last". Default: "best".
        device (str, optional): "auto", "cpu" or "gpu"; on the CPU every core is used. Default: "auto".
        progress (callable, optional): called with one line per condition. Default: None.

    Returns:
        dict: ``rows`` (:data:`ROBUSTNESS_COLUMNS`), ``record`` (what ran) and ``files``.

    Examples:
        >>> result = evaluate_robustness("docs/results/towernet_caltech16_128", severities=[3])  # doctest: +SKIP
        >>> sorted({row["corruption"] for row in result["rows"]})[:2]  # doctest: +SKIP
        ['brightness', 'clean']
    """
    from ..engine.device import describe_device, select_device

    names = _check_options(corruptions, severities, seed)
    select_device(device)
    if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1):
        raise ValueError(f"the batch size must be a positive integer, got {batch_size!r}")
    given = [runs] if isinstance(runs, (str, os.PathLike)) else list(runs)
    if not given:
        raise ValueError("evaluate_robustness needs at least one run folder")
    folders = [folder for run in given for folder in run_folders(run)]
    _check_run_names(folders)
    loaded = [(folder, *load_run(folder, weights)) for folder in folders]
    images, labels, paths, root = _eval_images(loaded[0][2], data)
    for run, _, config in loaded[1:]:
        other = _eval_images(config, data, decode=False)  # the same files is all that is compared
        if (other[2] != paths or config["image_size"] != loaded[0][2]["image_size"]
                or not _same_images(root, other[3], paths)):
            raise ValueError(f"{run} is evaluated on other images than {loaded[0][0]} (data, image size or the "
                             "images themselves differ); compare runs of one ablation, or pass data=FOLDER for all")
    conditions = [("clean", 0)] + [(name, s) for name in names for s in sorted(set(severities))]
    key = {"corruptions": names, "severities": sorted(set(severities)), "seed": seed, "weights": weights,
           "runs": [os.path.basename(os.path.normpath(run)) for run, _, _ in loaded], "images": paths,
           # what the finished rows were computed from: the weights as loaded, the evaluation folder
           "weights_sha256": [_weights_digest(network) for _, network, _ in loaded], "eval_data": os.path.abspath(root)}
    rows = _finished_rows(output, key)
    done = {(r["corruption"], r["severity"]) for r in rows}
    kernels = {}
    with contextlib.ExitStack() as stack:
        # Each network's convolutions are compiled once, for every condition: compiling them again per
        # condition and run kept every compiled program (16 GB after 17 of 36 conditions of 12 TowerNets).
        for run, network, config in loaded:
            kernels[run] = stack.enter_context(run_kernels(network, config))
        for corruption, severity in conditions:
            if (corruption, severity) in done:
                continue
            pixels = images if corruption == "clean" else [
                corrupt(a, corruption, severity, seed=seed, index=i) for i, a in enumerate(images)]
            for run, network, config in loaded:
                correct = _correct(network, config, pixels, labels, batch_size or config["batch_size"])
                rows.append({"run": os.path.basename(os.path.normpath(run)), "model": config["model"],
                             "attention": config["attention"], "seed": config["seed"], "corruption": corruption,
                             "severity": severity, "correct": correct, "total": len(labels),
                             "acc": correct / len(labels)})
            if output is not None:  # an interrupted evaluation goes on from here when run again
                atomic_write_text(json.dumps({"key": key, "rows": rows}) + "\n", _partial(output))
            if progress is not None:
                accs = ", ".join(f"{r['acc']:.3f}" for r in rows[-len(loaded):])
                progress(f"{corruption} {severity}: {accs}")
    order = {condition: i for i, condition in enumerate(conditions)}
    rows.sort(key=lambda r: order[(r["corruption"], r["severity"])])
    record = {
        "corruptions": {name: list(p) for name, p in corruption_parameters(names).items()},
        "severities": sorted(set(severities)), "seed": seed, "weights": weights, "images": len(labels),
        "eval_data": os.path.relpath(root).replace(os.sep, "/"),
        "paddle_version": paddle.__version__, "device": describe_device(),
        "runs": {os.path.basename(os.path.normpath(run)): {"onednn_convs": kernels[run]} for run, _, _ in loaded},
    }
    files = []
    if output is not None:
        files = _write(rows, record, output)
        os.remove(_partial(output))
    return {"rows": rows, "record": record, "files": files}


def _check_run_names(folders: Sequence[str]) -> None:
    """Refuse runs that ``robustness.csv`` could not tell apart: it names each run by its folder's name."""
    by_name: Dict[str, List[str]] = {}
    for folder in folders:
        by_name.setdefault(os.path.basename(os.path.normpath(folder)), []).append(folder)
    for name, same in by_name.items():
        if len(same) < 2:
            continue
        if len({os.path.realpath(folder) for folder in same}) < len(same):
            raise ValueError(f"run {name!r} is given more than once ({', '.join(same)}); give each run once")
        raise ValueError(f"runs {', '.join(same)} share the folder name {name!r}, which is how robustness.csv and "
                         "report name a run, so their rows would be pooled as one run's; rename one of the folders, "
                         "or evaluate them with separate --output folders")


def _weights_digest(network) -> str:
    """SHA-256 of a network's parameters and buffers, so a partial table is not continued with other weights."""
    digest = hashlib.sha256()
    for name, value in sorted(network.state_dict().items()):
        digest.update(name.encode("utf-8"))
        digest.update(np.ascontiguousarray(value.numpy()).tobytes())
    return digest.hexdigest()


def _partial(output) -> str:
    return os.path.join(os.fspath(output), "robustness.partial.json")


def _finished_rows(output, key: Dict[str, Any]) -> List[Dict[str, Any]]:
    """The rows an interrupted evaluation with the same settings left in ``output`` (none if it differs)."""
    if output is None or not os.path.isfile(_partial(output)):
        return []
    try:
        state = json.loads(read_text(_partial(output), "a partial robustness table"))
    except ValueError:
        return []  # a damaged partial file is computed again
    return list(state["rows"]) if state.get("key") == key else []


def _write(rows: List[Dict[str, Any]], record: Dict[str, Any], output) -> List[str]:
    output = os.fspath(output)
    os.makedirs(output, exist_ok=True)
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=ROBUSTNESS_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({**row, "acc": f"{row['acc']:.6f}"})
    files = [os.path.join(output, "robustness.csv"), os.path.join(output, "robustness.json")]
    atomic_write_text(text.getvalue(), files[0])
    atomic_write_text(json.dumps(record, indent=2) + "\n", files[1])
    return files


def read_robustness(path: Union[str, os.PathLike]) -> List[Dict[str, Any]]:
    """The rows of a ``robustness.csv`` (or of the one in folder ``path``), typed.

    Examples:
        >>> rows = read_robustness("docs/results/towernet_caltech16_128")  # doctest: +SKIP
        >>> rows[0]["corruption"], rows[0]["severity"]  # doctest: +SKIP
        ('clean', 0)
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        path = os.path.join(path, "robustness.csv")
    reader = csv.DictReader(io.StringIO(read_text(path, "a robustness table (robustness.csv)", newline="")))
    missing = set(ROBUSTNESS_COLUMNS) - set(reader.fieldnames or [])
    if missing:
        raise ValueError(f"{path} is not a robustness table: columns {sorted(missing)} are missing; "
                         "write it with `python -m simam_paddle robustness`")
    rows = list(reader)
    try:
        return [{**r, "seed": int(r["seed"]), "severity": int(r["severity"]), "correct": int(r["correct"]),
                 "total": int(r["total"]), "acc": float(r["acc"])} for r in rows]
    except ValueError as err:
        raise ValueError(f"{path}: a row has a value that is not a number ({err})") from None
