"""Start training from another run's weights (``train --init-from RUN``), e.g. a converted official checkpoint.

The new run takes the source run's model, attention, its options and image size unless they are given,
and loads its ``best_model.pdparams``. When the number of classes differs, the classifier (the network's
last ``Linear``) keeps its fresh initialisation: a new head, said in one printed line; every other weight
must fit exactly.
"""
import os
from typing import Any, Dict, List

from .._paddle import require_paddle

require_paddle()  # a clear message for a missing Paddle; a quiet import if this module loads it

import paddle  # noqa: E402
import paddle.nn as nn  # noqa: E402

__all__ = ["init_from_settings", "init_from_run"]

_INHERITED = ("model", "attention", "e_lambda", "reduction", "image_size")


def init_from_settings(given: Dict[str, Any]) -> Dict[str, Any]:
    """``given`` run settings completed from the ``init_from`` run's config (model, attention, options, image size).

    A setting that is given wins; the attention's options are taken only with the attention itself.

    Examples:
        >>> init_from_settings({"init_from": "runs/official_simam", "epochs": 5})  # doctest: +SKIP
        {'init_from': '.../runs/official_simam', 'epochs': 5, 'model': 'cifar_resnet20', 'attention': 'simam', ...}
    """
    from .config import load_config

    source = load_config(given["init_from"])
    settings = {**given, "init_from": os.path.abspath(given["init_from"])}
    same_model = settings.get("model", source["model"]) == source["model"]
    for key in _INHERITED:
        if key in settings or source.get(key) is None:
            continue
        if key in ("attention", "e_lambda", "reduction") and (not same_model or "attention" in given):
            continue
        settings[key] = source[key]
    return settings


def init_from_run(network: nn.Layer, run_dir: str, verbose: bool = True) -> List[str]:
    """Load a run's best weights into ``network``; a classifier of another size stays as initialised.

    Args:
        network (paddle.nn.Layer): The new run's network (same model and attention weights as the run).
        run_dir (str): The run folder whose ``best_model.pdparams`` to start from.
        verbose (bool, optional): Print one line when the classifier head is new. Default: True.

    Returns:
        list: The keys left at their fresh initialisation (the classifier's, or none).

    Examples:
        >>> net = build_model("cifar_resnet20", 5, attention="simam")  # doctest: +SKIP
        >>> init_from_run(net, "runs/official_simam")  # doctest: +SKIP
        init-from runs/official_simam: new classifier head (linear.weight, linear.bias) for 5 classes (the run had 10)
        ['linear.weight', 'linear.bias']
    """
    path = os.path.join(run_dir, "best_model.pdparams")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"--init-from {run_dir!r} has no best_model.pdparams; give a run folder written by "
                                "`train` or `convert-official`")
    state = paddle.load(path)
    expected = network.state_dict()
    linears = [(name, layer) for name, layer in network.named_sublayers() if isinstance(layer, nn.Linear)]
    head = {f"{linears[-1][0]}.{p}" for p in ("weight", "bias")} if linears else set()
    missing = [k for k in expected if k not in state]
    extra = [k for k in state if k not in expected]
    wrong = [k for k in expected if k in state and list(state[k].shape) != list(expected[k].shape)]
    if missing or extra or set(wrong) - head:
        what = (f"missing key {missing[0]}" if missing else f"unexpected key {extra[0]}" if extra else
                f"{sorted(set(wrong) - head)[0]} of another shape")
        raise ValueError(f"--init-from {run_dir!r} does not fit this model ({what}); use a run of the same model "
                         "and attention")
    network.set_state_dict({k: (expected[k] if k in wrong else v) for k, v in state.items()})
    if wrong and verbose:
        classes = expected[sorted(wrong)[-1]].shape[-1]
        print(f"init-from {run_dir}: new classifier head ({', '.join(sorted(wrong, reverse=True))}) for {classes} "
              f"classes (the run had {state[sorted(wrong)[-1]].shape[-1]})")
    return sorted(wrong, reverse=True)
