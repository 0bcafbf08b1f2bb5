"""Exact FLOPs and inference parameter counts (torch's FlopCounterMode).

What is counted: every convolution, module or functional (the conv
attention's ``F.conv2d`` calls included), and every matrix product
(attention of transformer peers), as ``2 x MACs``, which is what
``torch.utils.flop_counter.FlopCounterMode`` reports. Biases, BatchNorm,
activations, softmax, pooling and interpolation (the final upsampling to
the input size included) are not counted. With this rule the figures of the
official release come out exactly (SCTNet-B 239.0 GFLOPs at 1024x2048,
SCTNet-S 16.0 at 512x1024; see docs/speed.md).

Counting runs on the ``meta`` device by default: shapes only, no
arithmetic, so a 1024x2048 count takes well under a second.
"""
import copy
from collections import defaultdict
from typing import Dict, Tuple

import torch
import torch.nn as nn
from torch.utils.flop_counter import FlopCounterMode


class SegmentorForward(nn.Module):
    """``segmentor._forward`` (backbone + decode head) as a module.

    Shapes: ``[N, 3, H, W] -> [N, num_classes, H/s, W/s]`` (the head's
    stride ``s``; 8 for SCTNet).
    """

    def __init__(self, segmentor: nn.Module):
        super().__init__()
        self.segmentor = segmentor

    def forward(self, x):
        out = self.segmentor._forward(x)
        return out[0] if isinstance(out, (list, tuple)) else out


def _as_module(model: nn.Module) -> nn.Module:
    return SegmentorForward(model) if hasattr(model, '_forward') and hasattr(
        model, 'decode_head') else model


def count_flops(model: nn.Module,
                shape: Tuple[int, int],
                batch: int = 1,
                device='meta',
                by_module: bool = False) -> Dict:
    """FLOPs of one forward at input ``[batch, 3, H, W]``.

    Args:
        model: a segmentor (its ``_forward`` is counted) or any module
            taking an image tensor.
        shape: ``(H, W)``.
        device: where to run the count; ``'meta'`` (default) copies the
            model to the meta device (the given model is not changed).
        by_module: also return FLOPs per top-level child
            (``backbone``, ``decode_head``).

    Returns:
        dict: ``gflops`` (total / 1e9 / batch), ``flops`` (total),
        ``by_operator`` ({op name: flops}), optionally ``by_module``.
    """
    module = _as_module(model)
    if str(device) == 'meta':
        module = copy.deepcopy(module).to('meta')
    inp = torch.randn(batch, 3, *shape, device=device)
    with torch.no_grad(), FlopCounterMode(display=False, depth=3) as fc:
        module(inp)
    total = fc.get_total_flops()
    counts = fc.get_flop_counts()
    out = dict(
        gflops=total / 1e9 / batch,
        flops=int(total),
        by_operator={str(k): int(v)
                     for k, v in counts.get('Global', {}).items()})
    if by_module:
        seg = module.segmentor if isinstance(module,
                                             SegmentorForward) else module
        prefix = 'SegmentorForward.segmentor.' if isinstance(
            module, SegmentorForward) else f'{type(module).__name__}.'
        per = defaultdict(int)
        for name, _ in seg.named_children():
            key = prefix + name
            if key in counts:
                per[name] = int(sum(counts[key].values()))
            else:  # forward called directly (mmseg calls head.forward):
                # no hook fired for the module itself; add its children
                for k, v in counts.items():
                    rest = k[len(key) + 1:]
                    if k.startswith(key + '.') and '.' not in rest:
                        per[name] += int(sum(v.values()))
        out['by_module'] = dict(per)
    return out


def inference_params(model: nn.Module, shape=(256, 256)) -> int:
    """Parameters of the modules one inference forward calls.

    Training-only parts (auxiliary heads, a teacher, PIDNet's P/D
    branches) are not called and not counted; shared parameters count
    once. Runs one forward on a meta-device copy (shapes only).
    """
    module = copy.deepcopy(_as_module(model)).to('meta')
    called = set()
    hooks = [
        m.register_forward_pre_hook(lambda mod, _: called.add(id(mod)))
        for m in module.modules()
    ]
    try:
        with torch.no_grad():
            module(torch.randn(1, 3, *shape, device='meta'))
    finally:
        for h in hooks:
            h.remove()
    seen, total = set(), 0
    for m in module.modules():
        if id(m) not in called:
            continue
        for p in m.parameters(recurse=False):
            if id(p) not in seen:
                seen.add(id(p))
                total += p.numel()
    return total
