"""Inference-only versions of the SCTNet blocks (built from trained ones).

Each ``Deploy*`` module is constructed from its eager counterpart in
:mod:`mmseg_sctnet.models.layers` (BN in eval mode, i.e. running statistics)
and computes the same function with fewer, leaner operations:

* every BatchNorm that follows a convolution is folded into it;
* the pre-norms in front of the conv attention and of the MLP are folded
  exactly with :class:`~.fuse.PreNormConv2d` (or kept as a BatchNorm when
  ``fold_prenorm=False``);
* DropPath / Dropout (identities at inference) are removed, ReLUs and
  residual additions run in place on temporaries;
* the attention's second convolutions use pre-transposed contiguous kernels,
  and the dual normalisation works directly on channels-last tensors
  (no NCHW round trip).
"""
from typing import Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from ..models.layers import (DAPPM, MLP, BasicBlock, CFBlock,
                             ConvolutionalAttention)
from .fuse import PreNormConv2d, bn_scale_shift, fuse_conv_bn


def dual_norm_any_format(x: Tensor, num_heads: int) -> Tensor:
    """The attention's dual normalisation for NCHW or channels-last input.

    Same function as :func:`mmseg_sctnet.models.layers.conv_attention.
    dual_norm` (softmax over ``H*W`` per channel, then division by the sum
    over the channels of each head + 1e-6). A channels-last tensor is
    normalised through an ``[N, H*W, heads, C/heads]`` view, which avoids the
    two full copies a NCHW reshape would make; the result keeps the input's
    memory format. Shapes: ``[N, C, H, W] -> [N, C, H, W]``.
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


class DeployBasicBlock(nn.Module):
    """:class:`BasicBlock` with both BNs (and the shortcut's) folded.

    ``relu(conv1'(x)) -> conv2'(.) + shortcut'(x) -> [relu]``.
    Shapes as :class:`BasicBlock`.
    """

    def __init__(self, block: BasicBlock):
        super().__init__()
        self.conv1 = fuse_conv_bn(block.conv1, block.bn1)
        self.conv2 = fuse_conv_bn(block.conv2, block.bn2)
        self.downsample = None
        if block.downsample is not None:
            conv, bn = block.downsample[0], block.downsample[1]
            self.downsample = fuse_conv_bn(conv, bn)
        self.no_relu = block.no_relu

    def forward(self, x: Tensor) -> Tensor:
        out = self.conv2(self.conv1(x).relu_())
        out += x if self.downsample is None else self.downsample(x)
        return out if self.no_relu else out.relu_()


class DeployConvAttention(nn.Module):
    """:class:`ConvolutionalAttention` with its pre-norm folded.

    ``y_h = conv(BN(x), K_h)`` and ``y_w = conv(BN(x), K_w)`` become
    :class:`PreNormConv2d` (exact at the borders); the value convolutions use
    stored ``K^T`` kernels. Shapes: ``[N, C, H, W] -> [N, C, H, W]``.
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


class DeployMLP(nn.Module):
    """:class:`MLP` with its pre-norm folded (dropout removed).

    ``conv2(GELU(conv1(BN(x))))``, ``conv1(BN(.))`` as one
    :class:`PreNormConv2d`. Shapes as :class:`MLP`.
    """

    def __init__(self, mlp: MLP, fold_prenorm=True):
        super().__init__()
        conv1 = mlp.conv1
        if fold_prenorm:
            s, t = bn_scale_shift(mlp.norm)
            self.norm = None
            self.conv1 = PreNormConv2d(conv1.weight, conv1.bias, s, t,
                                       conv1.padding)
        else:
            self.norm = mlp.norm
            self.conv1 = conv1
        self.act = nn.GELU()
        self.conv2 = mlp.conv2

    def forward(self, x: Tensor) -> Tensor:
        if self.norm is not None:
            x = self.norm(x)
        return self.conv2(self.act(self.conv1(x)))


class DeployCFBlock(nn.Module):
    """:class:`CFBlock` without DropPath; residual sums in place.

    Shapes: ``[N, C, H, W] -> [N, C, H, W]``.
    """

    def __init__(self, block: CFBlock, fold_prenorm=True):
        super().__init__()
        self.attn_l = DeployConvAttention(block.attn_l, fold_prenorm)
        self.mlp_l = DeployMLP(block.mlp_l, fold_prenorm)

    def forward(self, x: Tensor) -> Tensor:
        x = self.attn_l(x).add_(x)
        return self.mlp_l(x).add_(x)


def _inplace_relu(module: nn.Module) -> nn.Module:
    """Make the ReLUs of ``module`` in-place (they only see temporaries)."""
    for name, child in module.named_children():
        if type(child) is nn.ReLU:
            setattr(module, name, nn.ReLU(inplace=True))
        else:
            _inplace_relu(child)
    return module


class DeploySCTNet(nn.Module):
    """The SCTNet backbone for inference: same outputs, folded BNs.

    Built from a trained :class:`mmseg_sctnet.models.SCTNet` (its BNs'
    running statistics are folded, so build it after loading the weights).
    Output contract as the eager backbone: ``(x_out, x2, x3, x4)``; the
    decode head uses ``x_out`` (``[N, 4c, ceil(H/8), ceil(W/8)]``).

    Args:
        backbone: the eager SCTNet.
        fold_prenorm (bool): fold the CFBlocks' pre-norms exactly
            (default) or keep them as BatchNorm layers.
        channels_last (bool): convert the input to channels-last memory
            format on entry (the weights are converted by
            :func:`~.convert.switch_to_deploy`).
    """

    def __init__(self, backbone, fold_prenorm=True, channels_last=False):
        super().__init__()
        self.base_channels = backbone.base_channels
        self.channels_last = channels_last
        st = backbone.conv1
        self.conv1 = nn.Sequential(
            fuse_conv_bn(st[0], st[1]), nn.ReLU(inplace=True),
            fuse_conv_bn(st[3], st[4]), nn.ReLU(inplace=True))
        for name in ('layer1', 'layer2', 'layer3'):
            setattr(self, name, nn.Sequential(
                *[DeployBasicBlock(b) for b in getattr(backbone, name)]))
        self.layer3_2 = DeployCFBlock(backbone.layer3_2, fold_prenorm)
        cd = backbone.convdown4
        self.convdown4 = nn.Sequential(
            fuse_conv_bn(cd[0], cd[1]), nn.ReLU(inplace=True))
        self.layer4 = DeployCFBlock(backbone.layer4, fold_prenorm)
        self.layer5 = DeployCFBlock(backbone.layer5, fold_prenorm)
        # DAPPM: every BN is followed by a ReLU before its conv, so none of
        # them folds; they stay BatchNorms in eval mode, ReLUs in place.
        self.spp = _inplace_relu(backbone.spp)
        assert isinstance(self.spp, DAPPM)

    @property
    def out_channels(self) -> Tuple[int, int, int, int]:
        c = self.base_channels
        return (4 * c, 2 * c, 4 * c, 8 * c)

    def forward(self, x: Tensor) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        x1 = self.layer1(self.conv1(x))
        x2 = self.layer2(x1.relu_())
        x3 = self.layer3(torch.relu(x2))  # x2 is returned as it is
        x3 = self.layer3_2(x3.relu_())
        x4 = self.layer4(self.convdown4(x3))
        x4 = self.layer5(x4.relu_())  # layer4's output is not returned
        x6 = F.interpolate(
            self.spp(x4), size=x2.shape[2:], mode='bilinear',
            align_corners=False)
        return torch.cat([x2, x6], dim=1), x2, x3, x4
