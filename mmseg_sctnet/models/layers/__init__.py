"""Building blocks of the SCTNet student (paper names)."""
from .basic_block import BasicBlock
from .cf_block import CFBlock
from .conv_attention import (ConvolutionalAttention, DeployConvAttention,
                             dual_norm_any_format)
from .dappm import DAPPM
from .fold import (PreNormConv2d, bn_scale_shift, fuse_conv_bn,
                   fuse_conv_bn_sequential)
from .mlp import MLP
from .norm import resolve_norm_cfg
from .weight_init import init_sctnet_weights

__all__ = [
    'BasicBlock', 'CFBlock', 'ConvolutionalAttention', 'DAPPM', 'MLP',
    'init_sctnet_weights', 'DeployConvAttention', 'dual_norm_any_format',
    'PreNormConv2d', 'bn_scale_shift', 'fuse_conv_bn',
    'fuse_conv_bn_sequential', 'resolve_norm_cfg'
]
