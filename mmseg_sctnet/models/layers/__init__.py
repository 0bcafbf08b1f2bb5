"""Building blocks of the SCTNet student (paper names)."""
from .basic_block import BasicBlock
from .cf_block import CFBlock
from .conv_attention import ConvolutionalAttention
from .dappm import DAPPM
from .mlp import MLP
from .weight_init import init_sctnet_weights

__all__ = [
    'BasicBlock', 'CFBlock', 'ConvolutionalAttention', 'DAPPM', 'MLP',
    'init_sctnet_weights'
]
