"""Conv-Former block (CFBlock)."""
import torch.nn as nn
from mmengine.model import BaseModule
from mmcv.cnn.bricks.drop import DropPath
from torch import Tensor

from .conv_attention import ConvolutionalAttention
from .mlp import MLP


class CFBlock(BaseModule):
    """Transformer-like block built from convolutions.

    ``x = x + DropPath(ConvAttention(x)); x = x + DropPath(MLP(x))``.
    Shapes: ``[N, C, H, W] -> [N, C, H, W]`` (stride 1).

    Args:
        in_channels (int): channels ``C``.
        out_channels (int): channels of the result (equal to ``C``).
        num_heads (int): heads of the attention's dual normalisation.
        drop_rate (float): dropout in the MLP. Default 0.
        drop_path_rate (float): stochastic depth. Default 0 (configs: 0.1).
        inter_channels (int): attention-map channels. Default 64.
        norm_cfg (dict): normalisation config.
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 num_heads: int = 8,
                 drop_rate: float = 0.,
                 drop_path_rate: float = 0.,
                 inter_channels: int = 64,
                 norm_cfg: dict = dict(type='BN', requires_grad=True),
                 init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        self.attn_l = ConvolutionalAttention(
            in_channels,
            out_channels,
            inter_channels=inter_channels,
            num_heads=num_heads,
            norm_cfg=norm_cfg)
        self.mlp_l = MLP(out_channels, drop_rate=drop_rate, norm_cfg=norm_cfg)
        self.drop_path = (
            DropPath(drop_path_rate) if drop_path_rate > 0. else nn.Identity())

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.drop_path(self.attn_l(x))
        return x + self.drop_path(self.mlp_l(x))

    def switch_to_deploy(self, fold_prenorm: bool = True) -> 'CFBlock':
        """Inference form, in place: DropPath removed. ``attn_l`` and
        ``mlp_l`` have their own ``switch_to_deploy`` (the deploy walk
        reaches them first)."""
        self.drop_path = nn.Identity()
        return self
