"""ResNet BasicBlock as used by SCTNet (DDRNet style)."""
from typing import Optional

import torch.nn as nn
from mmcv.cnn import build_norm_layer
from mmengine.model import BaseModule
from torch import Tensor
from torch.nn.modules.batchnorm import _BatchNorm

from .fold import fuse_conv_bn


class BasicBlock(BaseModule):
    """3x3 conv -> BN -> ReLU -> 3x3 conv -> BN, plus shortcut, then ReLU.

    Shapes: ``[N, C_in, H, W] -> [N, C_out, ceil(H/s), ceil(W/s)]`` with ``s``
    the stride of the first conv. Convolutions carry a bias (official layout).

    Args:
        in_channels (int): input channels.
        out_channels (int): output channels.
        stride (int): stride of the first 3x3 conv. Default 1.
        downsample (nn.Module, optional): shortcut projection (1x1 conv + BN)
            when the shape changes. Default None (identity).
        no_relu (bool): skip the final ReLU. The last block of each SCTNet
            stage sets it; the consumer applies the ReLU. Default False.
        norm_cfg (dict): normalisation layer config. Default BN.
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 stride: int = 1,
                 downsample: Optional[nn.Module] = None,
                 no_relu: bool = False,
                 norm_cfg: dict = dict(type='BN', requires_grad=True),
                 init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1)
        self.bn1 = build_norm_layer(norm_cfg, out_channels)[1]
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1)
        self.bn2 = build_norm_layer(norm_cfg, out_channels)[1]
        self.downsample = downsample
        self.stride = stride
        self.no_relu = no_relu

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        residual = x if self.downsample is None else self.downsample(x)
        out = out + residual
        return out if self.no_relu else self.relu(out)

    def switch_to_deploy(self, fold_prenorm: bool = True) -> 'BasicBlock':
        """Inference form, in place: ``bn1``, ``bn2`` and the shortcut's BN
        folded into their convolutions, ReLUs in place (they only see
        temporaries). Same function in eval mode; the state dict keeps
        ``conv1``, ``conv2`` and ``downsample`` (one conv). No pre-norm, so
        ``fold_prenorm`` does not apply.
        """
        if not isinstance(self.bn1, _BatchNorm):
            return self  # already deployed
        self.conv1 = fuse_conv_bn(self.conv1, self.bn1)
        self.conv2 = fuse_conv_bn(self.conv2, self.bn2)
        self.bn1, self.bn2 = nn.Identity(), nn.Identity()
        if self.downsample is not None:
            conv, bn = self.downsample
            self.downsample = fuse_conv_bn(conv, bn)
        self.relu = nn.ReLU(inplace=True)
        return self
