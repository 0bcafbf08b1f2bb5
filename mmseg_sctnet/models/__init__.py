"""SCTNet models, registered in ``mmseg.registry.MODELS`` on import, and
their deploy form (:mod:`.deploy_form`: each block's ``switch_to_deploy``
called by one walker)."""
from .backbones import *  # noqa: F401,F403
from .decode_heads import *  # noqa: F401,F403
from .deploy_form import (deploy_modules, deploy_options,  # noqa: F401
                          is_deployed, switch_to_deploy)
from .layers import (DAPPM, MLP, BasicBlock, CFBlock,  # noqa: F401
                     ConvolutionalAttention)
from .losses import *  # noqa: F401,F403
from .segmentors import *  # noqa: F401,F403

