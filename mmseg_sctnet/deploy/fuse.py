"""The BatchNorm folding primitives live next to the blocks that use them,
in :mod:`mmseg_sctnet.models.layers.fold`; re-exported here for the deploy
package's modules (``from .fuse import PreNormConv2d``)."""
from ..models.layers.fold import (PreNormConv2d, bn_scale_shift,
                                  fuse_conv_bn, fuse_conv_bn_sequential)

__all__ = [
    'PreNormConv2d', 'bn_scale_shift', 'fuse_conv_bn',
    'fuse_conv_bn_sequential'
]
