"""The convolutional MLP of the CFBlock."""
import torch.nn as nn
from mmcv.cnn import build_norm_layer
from mmengine.model import BaseModule
from torch import Tensor
from torch.nn.modules.batchnorm import _BatchNorm

from .fold import PreNormConv2d, bn_scale_shift


class MLP(BaseModule):
    """BN (eps 1e-6) -> 3x3 conv -> GELU -> dropout -> 3x3 conv -> dropout.

    Shapes: ``[N, C, H, W] -> [N, C_out, H, W]`` (stride 1).

    Args:
        in_channels (int): input channels ``C``.
        hidden_channels (int, optional): width of the hidden layer.
            Default ``C``.
        out_channels (int, optional): output channels. Default ``C``.
        drop_rate (float): dropout probability. Default 0.
        norm_cfg (dict): normalisation config; its ``eps`` is forced to 1e-6
            as in the official release.
    """

    def __init__(self,
                 in_channels: int,
                 hidden_channels: int = None,
                 out_channels: int = None,
                 drop_rate: float = 0.,
                 norm_cfg: dict = dict(type='BN', requires_grad=True),
                 init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        hidden_channels = hidden_channels or in_channels
        out_channels = out_channels or in_channels
        self.norm = build_norm_layer(dict(norm_cfg, eps=1e-6), in_channels)[1]
        self.conv1 = nn.Conv2d(in_channels, hidden_channels, 3, 1, 1)
        self.act = nn.GELU()
        self.conv2 = nn.Conv2d(hidden_channels, out_channels, 3, 1, 1)
        self.drop = nn.Dropout(drop_rate)

    def forward(self, x: Tensor) -> Tensor:
        x = self.drop(self.act(self.conv1(self.norm(x))))
        return self.drop(self.conv2(x))

    def switch_to_deploy(self, fold_prenorm: bool = True) -> 'MLP':
        """Inference form, in place: dropout removed and, with
        ``fold_prenorm``, the BN folded exactly into ``conv1`` (a
        :class:`~.fold.PreNormConv2d`, border-corrected). Same function in
        eval mode."""
        self.drop = nn.Identity()
        if fold_prenorm and isinstance(self.norm, _BatchNorm):
            s, t = bn_scale_shift(self.norm)
            conv = self.conv1
            self.conv1 = PreNormConv2d(conv.weight, conv.bias, s, t,
                                       conv.padding)
            self.norm = nn.Identity()
        return self
