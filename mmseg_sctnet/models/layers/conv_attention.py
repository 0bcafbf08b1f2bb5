"""Convolutional attention of the CFBlock (the paper's "learnable kernels")."""
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import build_norm_layer
from mmengine.model import BaseModule
from torch import Tensor

from .fold import PreNormConv2d, bn_scale_shift


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

    def switch_to_deploy(self,
                         fold_prenorm: bool = True) -> 'DeployConvAttention':
        """The inference form: a :class:`DeployConvAttention` built from
        this module (BN in eval mode). Same function."""
        return DeployConvAttention(self, fold_prenorm)


def dual_norm_any_format(x: Tensor, num_heads: int) -> Tensor:
    """:func:`dual_norm` for NCHW or channels-last input.

    A channels-last tensor is normalised through an
    ``[N, H*W, heads, C/heads]`` view, which avoids the two full copies a
    NCHW reshape would make; the result keeps the input's memory format.
    Shapes: ``[N, C, H, W] -> [N, C, H, W]``.
    """
    n, c, h, w = x.shape
    if (not x.is_contiguous()
            and x.is_contiguous(memory_format=torch.channels_last)):
        t = x.permute(0, 2, 3, 1).reshape(n, h * w, num_heads, c // num_heads)
        t = F.softmax(t, dim=1)
        t = t.div_(t.sum(dim=3, keepdim=True).add_(1e-6))
        return t.reshape(n, h, w, c).permute(0, 3, 1, 2)
    t = F.softmax(x.reshape(n, num_heads, c // num_heads, h * w), dim=3)
    t = t.div_(t.sum(dim=2, keepdim=True).add_(1e-6))
    return t.reshape(n, c, h, w)


def _frozen(t: Tensor) -> nn.Parameter:
    return nn.Parameter(t.detach().clone(), requires_grad=False)


class DeployConvAttention(nn.Module):
    """Inference form of :class:`ConvolutionalAttention`, pre-norm folded.

    ``conv(BN(x), K_h)`` and ``conv(BN(x), K_w)`` become
    :class:`~.fold.PreNormConv2d` (``key_h``, ``key_w``; exact at the
    borders) or, with ``fold_prenorm=False``, ``norm`` + plain convs; the
    value convolutions use stored ``K^T`` kernels (``value_h``,
    ``value_w``) and the dual normalisation works on channels-last tensors
    directly. Shapes: ``[N, C, H, W] -> [N, C, H, W]``.
    """

    def __init__(self, attn: ConvolutionalAttention, fold_prenorm=True):
        super().__init__()
        self.num_heads = attn.num_heads
        kv, kv3 = attn.kv.detach(), attn.kv3.detach()
        if fold_prenorm:
            s, t = bn_scale_shift(attn.norm)
            self.norm = None
            self.key_h = PreNormConv2d(kv, None, s, t, (3, 0))
            self.key_w = PreNormConv2d(kv3, None, s, t, (0, 3))
        else:
            self.norm = attn.norm
            self.key_h = _KeyConv(kv, (3, 0))
            self.key_w = _KeyConv(kv3, (0, 3))
        self.value_h = _frozen(kv.transpose(0, 1).contiguous())
        self.value_w = _frozen(kv3.transpose(0, 1).contiguous())

    def forward(self, x: Tensor) -> Tensor:
        if self.norm is not None:
            x = self.norm(x)
        a = dual_norm_any_format(self.key_h(x), self.num_heads)
        b = dual_norm_any_format(self.key_w(x), self.num_heads)
        out = F.conv2d(a, self.value_h, padding=(3, 0))
        out += F.conv2d(b, self.value_w, padding=(0, 3))
        return out


class _KeyConv(nn.Module):
    """A bias-free convolution with a given kernel (unfolded pre-norm)."""

    def __init__(self, kernel: Tensor, padding):
        super().__init__()
        self.weight = _frozen(kernel)
        self.padding = padding

    def forward(self, x: Tensor) -> Tensor:
        return F.conv2d(x, self.weight, padding=self.padding)
