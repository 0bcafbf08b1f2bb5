"""Exact FLOPs and inference parameter counts (torch's FlopCounterMode),
and the body of ``tools/get_flops.py`` (:func:`get_flops`).

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
import os.path as osp
from collections import defaultdict
from typing import Dict, Optional, Sequence, Tuple

import torch
import torch.nn as nn
from torch.utils.flop_counter import FlopCounterMode

from ..deploy.model import build_inference_model, require_sctnet
from ..io.config import load_config
from ..io.errors import UserError
from ..io.files import check_output_file, write_json
from ..models.deploy_form import switch_to_deploy
from .harness import MODEL_TYPES

__all__ = [
    'SegmentorForward', 'count_flops', 'inference_params', 'get_flops',
    'resolve_shape', 'default_shapes', 'MIN_SIDE'
]


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


#: smallest input side: the backbone's last stage has stride 32
MIN_SIDE = 32


def default_shapes() -> dict:
    """Config file stem -> (H, W) of the official speed/FLOPs tables
    (the sizes of ``speed/torch_speed.py --type``)."""
    return {
        osp.splitext(osp.basename(cfg))[0]: tuple(shape)
        for cfg, shape in MODEL_TYPES.values()
    }


def resolve_shape(config: str,
                  shape: Optional[Sequence[int]]) -> Tuple[int, int]:
    """``(H, W)`` from ``--shape`` (one number: square) or the config's
    official test size.

    Raises:
        UserError: a malformed or too small shape, or no default size.
    """
    if shape:
        shape = list(shape) * 2 if len(shape) == 1 else list(shape)
        if len(shape) != 2:
            raise UserError(f'--shape expects H W (or one number for a '
                            f'square), got {len(shape)} numbers: {shape}')
        if min(shape) < MIN_SIDE:
            raise UserError(f'--shape {shape[0]} {shape[1]}: height and '
                            f'width must be >= {MIN_SIDE} (the backbone '
                            'downsamples by 32)')
        return tuple(shape)
    stem = osp.splitext(osp.basename(config))[0]
    shapes = default_shapes()
    if stem in shapes:
        return shapes[stem]
    raise UserError(f'no default input size for {config}; pass --shape H W '
                    '(e.g. --shape 1024 2048)')


def get_flops(config: str,
              shape: Optional[Sequence[int]] = None,
              deploy: bool = False,
              json_out: Optional[str] = None) -> dict:
    """Count and print the FLOPs/parameters of ``config``'s inference model
    (random weights, nothing loaded); write them to ``json_out`` (a new
    file) too.

    Returns:
        dict: ``config``, ``shape``, ``params``, ``deploy``, and the
        :func:`count_flops` figures (``flops``, ``gflops``,
        ``by_operator``, ``by_module``).

    Raises:
        UserError: a missing/unreadable config or one without a model, a
            bad shape, or a ``json_out`` that exists, is the config or
            cannot be written -- all before the model is built.
    """
    cfg = load_config(config)
    hw = resolve_shape(config, shape)
    if json_out:
        check_output_file(
            json_out,
            inputs=[config],
            exists_hint='choose another path (files are never '
            'overwritten)')
    if not isinstance(cfg.get('model'), dict):
        raise UserError(f'{config} defines no model (is it a dataset or '
                        'schedule base?); pass a model config.')
    try:
        model = build_inference_model(cfg, init_weights=False)
    except (KeyError, TypeError, ValueError) as e:  # a wrong model config
        raise UserError(f'cannot build the model of {config}: '
                        f'{type(e).__name__}: {e}') from None
    params = inference_params(model)
    if deploy:
        require_sctnet(model, config)
        switch_to_deploy(model)
    res = count_flops(model, hw, by_module=True)
    line = '=' * 60
    print(line)
    print(f'Config:      {config}')
    print(f'Input shape: 1x3x{hw[0]}x{hw[1]}'
          f'{"  (deployed graph)" if deploy else ""}')
    print(f'Params:      {params:,} ({params / 1e6:.2f} M, inference '
          'modules only)')
    print(f'GFLOPs:      {res["gflops"]:.1f}  ({res["flops"]:,} FLOPs = 2 x '
          'MACs)')
    for name, v in res.get('by_module', {}).items():
        print(f'  {name:12s} {v / 1e9:10.2f}')
    for op, v in res['by_operator'].items():
        print(f'  [{op}] {v / 1e9:.2f}')
    print('Counted: every convolution (functional ones included) and matrix '
          'product;\nnot counted: BN, activations, softmax, pooling, '
          'interpolation.')
    print(line)
    out = dict(
        config=config, shape=list(hw), params=params, deploy=deploy, **res)
    if json_out:
        write_json(json_out, out, inputs=[config])
        print(f'wrote {json_out}')
    return out
