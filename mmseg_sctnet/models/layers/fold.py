"""Exact folding of BatchNorm layers into convolutions (inference only).

The blocks' ``switch_to_deploy`` methods use these to build their inference
forms (see :func:`mmseg_sctnet.deploy.switch_to_deploy`). Two cases:

* **post-norm** (``BN(conv(x))``): always exact, the classic fold
  ``W' = W * s``, ``b' = (b - mean) * s + beta`` with
  ``s = gamma / sqrt(var + eps)`` (:func:`fuse_conv_bn`).
* **pre-norm** (``conv(BN(x))``): the scale folds exactly into the weights
  (``conv(s * x) = conv_{W * s}(x)``, zero padding stays zero), but the shift
  ``t`` does not: with zero padding the shifted input is 0 outside the image,
  so the bias the shift contributes is smaller at the borders, where some
  kernel taps fall on the padding. :class:`PreNormConv2d` folds the interior
  bias into the conv bias and adds the exact border corrections to the
  outermost ``padding`` rows/columns only (a few in-place slice additions,
  cheaper than a BatchNorm pass over the whole input). The result equals
  ``conv(BN(x))`` for every input size (up to float rounding).

All folds are computed in float64 and stored in the parameters' dtype.
"""
from typing import Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor
from torch.nn.modules.batchnorm import _BatchNorm


def bn_scale_shift(bn: _BatchNorm) -> Tuple[Tensor, Tensor]:
    """Per-channel ``(s, t)`` with ``BN(x) == s * x + t`` in eval mode.

    Float64 tensors of shape ``[C]``.

    Raises:
        ValueError: the BN does not track running statistics (its eval
            output depends on the batch and cannot be folded).
    """
    if bn.running_var is None or bn.running_mean is None:
        raise ValueError(f'{bn} has no running statistics '
                         '(track_running_stats=False); it cannot be folded')
    var = bn.running_var.detach().double()
    mean = bn.running_mean.detach().double()
    s = torch.rsqrt(var + bn.eps)
    if bn.weight is not None:
        s = s * bn.weight.detach().double()
    t = -mean * s
    if bn.bias is not None:
        t = t + bn.bias.detach().double()
    return s, t


def fuse_conv_bn(conv: nn.Conv2d, bn: _BatchNorm) -> nn.Conv2d:
    """A new ``nn.Conv2d`` equal to ``bn(conv(x))`` (BN in eval mode).

    Works for any stride/padding/groups (the BN acts on the output channels).
    The result always has a bias.
    """
    if bn.num_features != conv.out_channels:
        raise ValueError(f'cannot fold {bn} into {conv}: channel mismatch')
    s, t = bn_scale_shift(bn)
    w = conv.weight.detach()
    fused = nn.Conv2d(
        conv.in_channels,
        conv.out_channels,
        conv.kernel_size,
        stride=conv.stride,
        padding=conv.padding,
        dilation=conv.dilation,
        groups=conv.groups,
        bias=True,
        padding_mode=conv.padding_mode).to(device=w.device, dtype=w.dtype)
    b = (conv.bias.detach().double()
         if conv.bias is not None else torch.zeros_like(s))
    with torch.no_grad():
        fused.weight.copy_((w.double() * s.view(-1, 1, 1, 1)).to(w.dtype))
        fused.bias.copy_((b * s + t).to(w.dtype))
    fused.weight.requires_grad_(False)
    fused.bias.requires_grad_(False)
    return fused


def fuse_conv_bn_sequential(seq: nn.Sequential) -> nn.Sequential:
    """A new ``nn.Sequential`` with every ``conv -> BN`` pair of ``seq``
    folded (:func:`fuse_conv_bn`) and its ReLUs in place (they follow a
    convolution, so they only see temporaries).

    E.g. the stem ``[conv, BN, ReLU, conv, BN, ReLU]`` becomes
    ``[conv', ReLU, conv', ReLU]``.
    """
    layers = list(seq)
    out = []
    i = 0
    while i < len(layers):
        m = layers[i]
        nxt = layers[i + 1] if i + 1 < len(layers) else None
        if isinstance(m, nn.Conv2d) and isinstance(nxt, _BatchNorm):
            out.append(fuse_conv_bn(m, nxt))
            i += 2
            continue
        out.append(nn.ReLU(inplace=True) if type(m) is nn.ReLU else m)
        i += 1
    return nn.Sequential(*out)


class PreNormConv2d(nn.Module):
    """``conv(BN(x))`` with the BN folded exactly (stride 1, "same" padding).

    Shapes: ``[N, C_in, H, W] -> [N, C_out, H, W]``.

    ``y = conv(x, W*s) + b_full`` is exact in the interior;
    ``b_full = b + sum_{c,i,j} W[:, c, i, j] * t[c]``. At an output pixel whose
    window covers padding, the taps on the padding must not contribute
    their share of the shift; the missing part is a function of the distance
    to each border only, so it is stored once (``corr_*`` buffers) and added
    in place to the ``ph`` top/bottom rows and ``pw`` left/right columns,
    with the corner blocks completing the inclusion-exclusion. When the map
    is smaller than the padding (e.g. 2 rows for a 7-tap kernel) a general
    (slower, still exact) path adds the full bias map ``conv(1, T)`` instead;
    setting ``general_path = True`` uses it for every size (an ONNX graph
    exported with dynamic axes then stays exact for any input size).

    Args:
        weight (Tensor): conv weight ``[C_out, C_in, kh, kw]``, ``kh = 2*ph+1``
            and ``kw = 2*pw+1``.
        bias (Tensor, optional): conv bias ``[C_out]``.
        scale (Tensor): BN scale ``s`` ``[C_in]`` (see :func:`bn_scale_shift`).
        shift (Tensor): BN shift ``t`` ``[C_in]``.
        padding (tuple[int, int]): ``(ph, pw)``.
    """

    def __init__(self,
                 weight: Tensor,
                 bias: Optional[Tensor],
                 scale: Tensor,
                 shift: Tensor,
                 padding: Tuple[int, int] = (0, 0)):
        super().__init__()
        weight = weight.detach()
        dtype = weight.dtype
        kh, kw = weight.shape[2:]
        ph, pw = padding
        if kh != 2 * ph + 1 or kw != 2 * pw + 1:
            raise ValueError(f'PreNormConv2d needs "same" padding: kernel '
                             f'{(kh, kw)} with padding {padding}')
        self.padding = (ph, pw)
        self.general_path = False
        w = weight.double()
        taps = (w * shift.double().view(1, -1, 1, 1)).sum(1)  # [Co, kh, kw]
        full = taps.sum((1, 2))
        if bias is not None:
            full = full + bias.detach().double()
        self.weight = nn.Parameter(
            (w * scale.double().view(1, -1, 1, 1)).to(dtype),
            requires_grad=False)
        self.bias = nn.Parameter(full.to(dtype), requires_grad=False)
        # shift contribution of each tap, for the general path
        self.register_buffer('taps', taps.unsqueeze(1).to(dtype))
        # corrections: reference map with exactly one interior row/column
        ref = F.conv2d(
            torch.ones(1, 1, kh, kw, dtype=torch.float64, device=w.device),
            taps.unsqueeze(1),
            padding=padding)[0] - taps.sum((1, 2)).view(-1, 1, 1)
        top, bottom = ref[:, :ph, pw:pw + 1], ref[:, ph + 1:, pw:pw + 1]
        left, right = ref[:, ph:ph + 1, :pw], ref[:, ph:ph + 1, pw + 1:]
        corr = dict(top=top, bottom=bottom, left=left, right=right)
        if ph and pw:
            corr.update(
                tl=ref[:, :ph, :pw] - top - left,
                tr=ref[:, :ph, pw + 1:] - top - right,
                bl=ref[:, ph + 1:, :pw] - bottom - left,
                br=ref[:, ph + 1:, pw + 1:] - bottom - right)
        for name, value in corr.items():
            if value.numel():
                self.register_buffer(f'corr_{name}', value.to(dtype))

    def forward(self, x: Tensor) -> Tensor:
        ph, pw = self.padding
        y = F.conv2d(x, self.weight, self.bias, padding=self.padding)
        h, w = y.shape[-2:]
        if self.general_path or (ph and h < ph) or (pw and w < pw):
            # map smaller than the padding: add the exact bias map
            bias_map = F.conv2d(
                y.new_ones(1, 1, h, w), self.taps, padding=self.padding)
            return y + (bias_map - self.taps.sum((1, 2, 3)).view(1, -1, 1, 1))
        if ph:
            y[:, :, :ph] += self.corr_top
            y[:, :, -ph:] += self.corr_bottom
        if pw:
            y[:, :, :, :pw] += self.corr_left
            y[:, :, :, -pw:] += self.corr_right
        if ph and pw:
            y[:, :, :ph, :pw] += self.corr_tl
            y[:, :, :ph, -pw:] += self.corr_tr
            y[:, :, -ph:, :pw] += self.corr_bl
            y[:, :, -ph:, -pw:] += self.corr_br
        return y

    def extra_repr(self) -> str:
        co, ci, kh, kw = self.weight.shape
        return (f'{ci}, {co}, kernel_size=({kh}, {kw}), '
                f'padding={self.padding}, pre-norm folded')
