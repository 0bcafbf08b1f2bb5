"""SCTNet models, registered in ``mmseg.registry.MODELS`` on import."""
from .backbones import *  # noqa: F401,F403
from .decode_heads import *  # noqa: F401,F403
from .losses import *  # noqa: F401,F403
from .segmentors import *  # noqa: F401,F403
from .layers import (DAPPM, MLP, BasicBlock, CFBlock,  # noqa: F401
                     ConvolutionalAttention)
