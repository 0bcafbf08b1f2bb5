"""Convolutional attention of the CFBlock (the paper's "learnable kernels")."""
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import build_norm_layer
from mmengine.model import BaseModule
from torch import Tensor


def dual_norm(x: Tensor, num_heads: int) -> Tensor:
    """Dual normalisation of the attention map.

    ``x`` of shape ``[N, C_inter, H, W]`` is viewed as
    ``[N, heads, C_inter/heads, H*W]``; softmax over the spatial axis, then
    each value is divided by the sum over the channels of its head (+1e-6).
    """
    n, c, h, w = x.shape
    x = x.reshape(n, num_heads, c // num_heads, h * w)
    x = F.softmax(x, dim=3)
    x = x / (x.sum(dim=2, keepdim=True) + 1e-6)
    return x.reshape(n, c, h, w)


class ConvolutionalAttention(BaseModule):
    """Conv attention with shared learnable kernels, two stripe branches.

    ``x = BN(x)``; for ``K`` in (``kv`` of shape ``[C_inter, C, 7, 1]``,
    ``kv3`` of shape ``[C_inter, C, 1, 7]``):
    ``y_K = conv(dual_norm(conv(x, K)), K^T)`` with "same" padding; the output
    is ``y_kv + y_kv3``. The kernels play the role of keys (first conv) and
    values (second conv, transposed); there is no separate Q/V/output
    projection. Shapes: ``[N, C, H, W] -> [N, C, H, W]``.

    Args:
        in_channels (int): input channels ``C``.
        out_channels (int): output channels (must equal ``C``; the transposed
            kernel maps back to the input width).
        inter_channels (int): channels of the attention map. Default 64.
        num_heads (int): heads of the dual normalisation. Default 8.
        norm_cfg (dict): normalisation config (pre-norm, eps 1e-5).
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 inter_channels: int = 64,
                 num_heads: int = 8,
                 norm_cfg: dict = dict(type='BN', requires_grad=True),
                 init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        if out_channels % num_heads != 0:
            raise ValueError(f'out_channels ({out_channels}) must be a '
                             f'multiple of num_heads ({num_heads})')
        if inter_channels % num_heads != 0:
            raise ValueError(f'inter_channels ({inter_channels}) must be a '
                             f'multiple of num_heads ({num_heads})')
        if out_channels != in_channels:
            raise ValueError('ConvolutionalAttention maps back to its input '
                             f'width: out_channels ({out_channels}) must equal '
                             f'in_channels ({in_channels})')
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.inter_channels = inter_channels
        self.num_heads = num_heads
        self.norm = build_norm_layer(norm_cfg, in_channels)[1]
        self.kv = nn.Parameter(torch.zeros(inter_channels, in_channels, 7, 1))
        self.kv3 = nn.Parameter(torch.zeros(inter_channels, in_channels, 1, 7))
        self.reset_attention_kernels()

    def reset_attention_kernels(self) -> None:
        """Truncated normal init (std 0.001) of the learnable kernels."""
        nn.init.trunc_normal_(self.kv, std=0.001)
        nn.init.trunc_normal_(self.kv3, std=0.001)

    def _branch(self, x: Tensor, kernel: Tensor, padding) -> Tensor:
        y = F.conv2d(x, kernel, padding=padding)
        y = dual_norm(y, self.num_heads)
        return F.conv2d(y, kernel.transpose(0, 1), padding=padding)

    def forward(self, x: Tensor) -> Tensor:
        x = self.norm(x)
        return (self._branch(x, self.kv, (3, 0)) +
                self._branch(x, self.kv3, (0, 3)))
