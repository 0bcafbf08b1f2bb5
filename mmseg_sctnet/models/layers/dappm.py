"""Deep Aggregation Pyramid Pooling Module (DDRNet), SCTNet variant."""
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import build_norm_layer
from mmengine.model import BaseModule
from torch import Tensor


def _bn_relu_conv(norm_cfg, in_ch, out_ch, kernel_size, pool=None):
    """``[pool] -> BN -> ReLU -> conv`` (official index layout)."""
    layers = [] if pool is None else [pool]
    layers += [
        build_norm_layer(norm_cfg, in_ch)[1],
        nn.ReLU(),
        nn.Conv2d(in_ch, out_ch, kernel_size, padding=kernel_size // 2),
    ]
    return nn.Sequential(*layers)


class DAPPM(BaseModule):
    """Pyramid pooling at 1/32 with cascaded 3x3 "process" convolutions.

    Branches: ``scale0`` (identity scale), ``scale1..3`` (average pooling
    5/9/17 with stride 2/4/8, zero padding counted), ``scale4`` (global
    pooling). Each pooled branch is upsampled (bilinear) to the input size,
    added to the previous level and refined by ``process{i}``; the five
    levels are concatenated, compressed by a 1x1 conv and added to a 1x1
    ``shortcut``. Every conv is preceded by BN + ReLU.

    Shapes: ``[N, C_in, H, W] -> [N, C_out, H, W]``.

    Args:
        in_channels (int): input channels (``8c``).
        inter_channels (int): branch width (64 for S, 128 for B).
        out_channels (int): output channels (``2c``).
        norm_cfg (dict): normalisation config.
    """

    def __init__(self,
                 in_channels: int,
                 inter_channels: int,
                 out_channels: int,
                 norm_cfg: dict = dict(type='BN', requires_grad=True),
                 init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        pools = [
            nn.AvgPool2d(kernel_size=5, stride=2, padding=2),
            nn.AvgPool2d(kernel_size=9, stride=4, padding=4),
            nn.AvgPool2d(kernel_size=17, stride=8, padding=8),
            nn.AdaptiveAvgPool2d((1, 1)),
        ]
        for i, pool in enumerate(pools, start=1):
            setattr(self, f'scale{i}',
                    _bn_relu_conv(norm_cfg, in_channels, inter_channels, 1,
                                  pool))
        self.scale0 = _bn_relu_conv(norm_cfg, in_channels, inter_channels, 1)
        for i in range(1, 5):
            setattr(self, f'process{i}',
                    _bn_relu_conv(norm_cfg, inter_channels, inter_channels,
                                  3))
        self.compression = _bn_relu_conv(norm_cfg, inter_channels * 5,
                                         out_channels, 1)
        self.shortcut = _bn_relu_conv(norm_cfg, in_channels, out_channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        size = x.shape[2:]
        levels = [self.scale0(x)]
        for i in range(1, 5):
            pooled = getattr(self, f'scale{i}')(x)
            up = F.interpolate(
                pooled, size=size, mode='bilinear', align_corners=False)
            levels.append(getattr(self, f'process{i}')(up + levels[-1]))
        return self.compression(torch.cat(levels, dim=1)) + self.shortcut(x)

    def switch_to_deploy(self, fold_prenorm: bool = True) -> 'DAPPM':
        """Inference form, in place: ReLUs in place. Every BN is followed by
        a ReLU before its conv, so none folds; they stay BatchNorms in eval
        mode."""
        for seq in self.children():
            for i, m in enumerate(seq):
                if type(m) is nn.ReLU:
                    seq[i] = nn.ReLU(inplace=True)
        return self
