"""The bodies of ``speed/torch_speed.py`` (one model under the official
protocol) and ``speed/deploy_speedup.py`` (the deploy variants of one
model, interleaved)."""
import copy
import functools
import os.path as osp
import statistics
from typing import Optional, Sequence

import torch
import torch.nn as nn

from ..deploy.dtype import check_dtype
from ..deploy.model import (SegmentorWithResize, compile_for_inference,
                            load_inference_model)
from ..io.config import resolve_config
from ..io.errors import DeployUsageError
from ..models.deploy_form import switch_to_deploy
from .flops import inference_params
from .harness import (MODEL_TYPES, benchmark, device_name, environment,
                      interleaved, measure, parse_names, prepare, random_model,
                      resolve_device)

__all__ = [
    'torch_speed', 'deploy_speedup', 'DEPLOY_VARIANTS',
    'DEFAULT_DEPLOY_VARIANTS', 'build_variant'
]

#: variants of :func:`deploy_speedup` (same weights, different forms)
DEPLOY_VARIANTS = {
    'eager': dict(deploy=False, channels_last=False),
    'eager-cl': dict(deploy=False, channels_last=True),
    'deploy': dict(deploy=True, channels_last=True),
    'deploy-nchw': dict(deploy=True, channels_last=False),
    'deploy-bn': dict(deploy=True, channels_last=True, fold_prenorm=False),
    'deploy-compile': dict(deploy=True, channels_last=True, compile=True),
}
DEFAULT_DEPLOY_VARIANTS = ('eager', 'eager-cl', 'deploy', 'deploy-nchw',
                           'deploy-bn')


def _check_shape(shape) -> None:
    if shape and min(shape) < 32:
        raise DeployUsageError(f'--shape {list(shape)}: height and width '
                               'must be >= 32')


@benchmark
def torch_speed(type: str = 'sctnet-b-seg100',
                config: Optional[str] = None,
                checkpoint: Optional[str] = None,
                shape: Optional[Sequence[int]] = None,
                batch: int = 1,
                device: Optional[str] = None,
                fp16: bool = False,
                dtype: str = 'fp32',
                dtype_mode: str = 'autocast',
                channels_last: Optional[bool] = None,
                compile: bool = False,
                deploy: bool = False,
                no_resize: bool = False,
                warmup: int = 10,
                min_time: float = 6.0,
                calib_time: float = 1.0,
                iters: Optional[int] = None) -> dict:
    """``speed/torch_speed.py``: one model under the official protocol.

    ``fp16`` is the official script's switch (weights and input in half
    precision, GPU); ``dtype`` bf16/fp16 runs under :mod:`.dtype` (refused
    where the device has no native support).
    """
    dev = resolve_device(device)
    _check_shape(shape)
    if fp16:
        if dtype not in ('fp32', 'fp16'):
            raise DeployUsageError(f'--fp16 with --dtype {dtype}: choose one')
        if dev.type != 'cuda':
            raise DeployUsageError(
                '--fp16 needs --device cuda (half-precision convolutions on '
                'CPU are not a meaningful benchmark)')
        dtype = 'fp32'  # weights converted by prepare(fp16=True)
    check_dtype(dtype, dev)
    if dev.type == 'cuda':
        torch.backends.cudnn.enabled = True
        torch.backends.cudnn.benchmark = True
    if type not in MODEL_TYPES:
        raise DeployUsageError(f'--type {type!r}: one of '
                               f'{", ".join(sorted(MODEL_TYPES))}')
    cfg_path, size = MODEL_TYPES[type]
    name = type
    if config:
        cfg_path, name = config, osp.splitext(osp.basename(config))[0]
        if not shape:
            raise DeployUsageError('--config needs --shape H W')
    if shape:
        size = tuple(shape)
    segmentor = load_inference_model(resolve_config(cfg_path), checkpoint)
    params = inference_params(segmentor)
    model = prepare(
        segmentor,
        dev,
        deploy=deploy,
        channels_last=channels_last,
        fp16=fp16,
        resize=not no_resize,
        dtype=dtype,
        dtype_mode=dtype_mode)
    if compile:
        model = compile_for_inference(model)
    inp = torch.randn(batch, 3, *size, device=dev)
    if fp16:
        inp = inp.half()
    cl = channels_last if channels_last is not None else deploy
    opts = dict(
        deploy=deploy,
        channels_last=bool(cl),
        fp16=fp16,
        dtype='fp16' if fp16 else dtype,
        dtype_mode=dtype_mode if dtype != 'fp32' else None,
        compile=compile,
        resize=not no_resize,
        batch=batch)
    print(f'{name}: input {batch}x3x{size[0]}x{size[1]} on '
          f'{device_name(dev)}, options {opts}')
    res = measure(
        model,
        inp,
        warmup=warmup,
        min_time=min_time,
        calib_time=calib_time,
        iters=iters)
    result = dict(
        type=name,
        config=cfg_path,
        checkpoint=checkpoint,
        shape=list(size),
        params=params,
        **opts,
        **res,
        **environment(dev),
        protocol=dict(
            warmup=warmup,
            min_time=min_time,
            calib_time=calib_time,
            fixed_iters=iters))
    print('=========Speed Testing=========')
    print(f'latency {res["latency_ms"]:.2f} ms  FPS {res["fps"]:.2f}  '
          f'({res["iterations"]} iterations, {res["seconds"]:.1f} s)')
    return result


def build_variant(base: nn.Module, spec: dict,
                  dev: torch.device) -> nn.Module:
    """One :data:`DEPLOY_VARIANTS` entry built from a copy of ``base``."""
    m = copy.deepcopy(base)
    if spec['deploy']:
        switch_to_deploy(m, fold_prenorm=spec.get('fold_prenorm', True),
                         channels_last=spec['channels_last'])
    elif spec['channels_last']:
        m.to(memory_format=torch.channels_last)
    m = SegmentorWithResize(m).to(dev).eval()
    return compile_for_inference(m) if spec.get('compile') else m


@benchmark
def deploy_speedup(type: str = 'sctnet-b-seg50',
                   shape: Optional[Sequence[int]] = None,
                   device: Optional[str] = None,
                   variants: Sequence[str] = DEFAULT_DEPLOY_VARIANTS,
                   rounds: int = 5,
                   iters: int = 1,
                   warmup: int = 3) -> dict:
    """``speed/deploy_speedup.py``: the deploy variants, interleaved.

    Per variant: median and minimum of the per-round mean latencies, the
    speed-up of the median against the first variant, and the maximum
    relative difference of its output from the first variant's.
    """
    if isinstance(variants, str):
        variants = parse_names(variants, DEPLOY_VARIANTS, '--variants')
    dev = resolve_device(device)
    _check_shape(shape)
    if dev.type == 'cuda':
        torch.backends.cudnn.benchmark = True
    cfg_path, size = MODEL_TYPES[type]
    if shape:
        size = tuple(shape)
    base = random_model(cfg_path)
    models = {v: build_variant(base, DEPLOY_VARIANTS[v], dev)
              for v in variants}
    inp = torch.randn(1, 3, *size, device=dev)
    print(f'{type} at {size[0]}x{size[1]} on {device_name(dev)}; '
          f'{rounds} rounds x {iters} iteration(s)')
    errors = {}
    with torch.inference_mode():
        ref = None
        for v, m in models.items():
            out = m(inp).float()
            if ref is None:
                ref = out
            errors[v] = ((out - ref).abs().max() / ref.abs().max()).item()
    times = interleaved({v: functools.partial(m, inp)
                         for v, m in models.items()},
                        rounds, iters, max(0, warmup - 1), dev)
    first = variants[0]
    base_med = statistics.median(times[first])
    rows = {}
    print(f'\n{"variant":14s} {"median ms":>10s} {"min ms":>10s} '
          f'{"speed-up":>9s} {"max rel err":>12s}')
    for v in variants:
        med = statistics.median(times[v])
        rows[v] = dict(median_ms=med, min_ms=min(times[v]),
                       speedup_vs_first=base_med / med, rounds_ms=times[v],
                       max_rel_err=errors[v], **DEPLOY_VARIANTS[v])
        print(f'{v:14s} {med:10.1f} {min(times[v]):10.1f} '
              f'{base_med / med:8.3f}x {errors[v]:12.2e}')
    result = dict(type=type, shape=list(size), rounds=rounds,
                  iters=iters, reference=first, variants=rows,
                  **environment(dev))
    return result
