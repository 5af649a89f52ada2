"""simam-paddle: SimAM, the parameter-free 3-D attention module, for PaddlePaddle 3.x.

Yang et al., "SimAM: A Simple, Parameter-Free Attention Module for Convolutional Neural
Networks", ICML 2021. This package only re-exports; each concern lives in its own module.
Importing it picks no device and changes no global Paddle state.
"""
from ._paddle import require_paddle as _require_paddle

_require_paddle()

from . import simam as _simam  # noqa: E402
from .simam import *  # noqa: E402,F401,F403
from . import fused as _fused  # noqa: E402
from .fused import *  # noqa: E402,F401,F403
from . import images as _images  # noqa: E402
from .images import *  # noqa: E402,F401,F403
from . import split as _split  # noqa: E402
from .split import *  # noqa: E402,F401,F403
from . import data as _data  # noqa: E402
from .data import *  # noqa: E402,F401,F403
from . import attention as _attention  # noqa: E402
from .attention import *  # noqa: E402,F401,F403
from . import blocks as _blocks  # noqa: E402
from .blocks import *  # noqa: E402,F401,F403
from . import towernet as _towernet  # noqa: E402
from .towernet import *  # noqa: E402,F401,F403
from . import official_init as _official_init  # noqa: E402
from .official_init import *  # noqa: E402,F401,F403
from . import zoo as _zoo  # noqa: E402
from .zoo import *  # noqa: E402,F401,F403
from . import digits as _digits  # noqa: E402
from .digits import *  # noqa: E402,F401,F403
from . import callbacks as _callbacks  # noqa: E402
from .callbacks import *  # noqa: E402,F401,F403
from . import training as _training  # noqa: E402
from .training import *  # noqa: E402,F401,F403
from . import evaluation as _evaluation  # noqa: E402
from .evaluation import *  # noqa: E402,F401,F403
from . import plots as _plots  # noqa: E402
from .plots import *  # noqa: E402,F401,F403
from . import runs as _runs  # noqa: E402
from .runs import *  # noqa: E402,F401,F403
from . import demo as _demo  # noqa: E402
from .demo import *  # noqa: E402,F401,F403
from . import report as _report  # noqa: E402
from .report import *  # noqa: E402,F401,F403
from . import ablation as _ablation  # noqa: E402
from .ablation import *  # noqa: E402,F401,F403
from . import notebook as _notebook  # noqa: E402
from .notebook import *  # noqa: E402,F401,F403
from . import torch_checkpoint as _torch_checkpoint  # noqa: E402
from .torch_checkpoint import *  # noqa: E402,F401,F403
from . import official as _official  # noqa: E402
from .official import *  # noqa: E402,F401,F403
from . import finetune as _finetune  # noqa: E402
from .finetune import *  # noqa: E402,F401,F403

__version__ = "0.1.0"

__all__ = [
    *_simam.__all__,
    *_fused.__all__,
    *_images.__all__,
    *_split.__all__,
    *_data.__all__,
    *_attention.__all__,
    *_blocks.__all__,
    *_towernet.__all__,
    *_official_init.__all__,
    *_zoo.__all__,
    *_digits.__all__,
    *_callbacks.__all__,
    *_training.__all__,
    *_evaluation.__all__,
    *_plots.__all__,
    *_runs.__all__,
    *_demo.__all__,
    *_report.__all__,
    *_ablation.__all__,
    *_notebook.__all__,
    *_torch_checkpoint.__all__,
    *_official.__all__,
    *_finetune.__all__,
]
