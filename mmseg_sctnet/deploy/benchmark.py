"""Latency harness of the ``speed/`` scripts (PIDNet/SCTNet protocol).

Protocol (the official ``speed/torch_speed.py`` of SCTNet, itself PIDNet's):
batch 1, a random input at the test size, ``cudnn.benchmark`` on GPU,
10 warm-up runs, then a calibration that doubles the number of runs until
they take at least ``calib_time`` (1 s), the number of timed runs chosen so
that they take about ``min_time`` (6 s), and the mean latency of those runs
with the device synchronised before and after. The timed module includes
the final bilinear upsampling of the logits to the input size.

The official calibration starts at 100 runs, which takes minutes per step
on a CPU; starting at 1 run gives the same iteration count on a GPU.

:func:`torch_speed` and :func:`deploy_speedup` are the two scripts'
bodies; :func:`interleaved` is the round-robin timing shared with
:mod:`.backends`.
"""
import copy
import functools
import json
import math
import os
import os.path as osp
import platform
import statistics
import time
from typing import Callable, Dict, Optional, Sequence

import torch
import torch.nn as nn

from .api import (SegmentorWithResize, build_inference_model,
                  compile_for_inference, load_inference_model)
from .analysis import inference_params
from .convert import switch_to_deploy
from .dtype import check_dtype, cpu_flags, cpu_model, with_dtype
from .errors import DeployUsageError

#: the repository (configs/ lives there for a clone or editable install)
ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))

#: ``--type`` -> (config, test size (H, W)) as in the official speed script.
MODEL_TYPES: Dict[str, tuple] = {
    'sctnet-s-seg50':
    ('configs/sctnet/cityscapes/sctnet-s_seg50_8x2_160k_cityscapes.py',
     (512, 1024)),
    'sctnet-s-seg75':
    ('configs/sctnet/cityscapes/sctnet-s_seg75_8x2_160k_cityscapes.py',
     (768, 1536)),
    'sctnet-b-seg50':
    ('configs/sctnet/cityscapes/sctnet-b_seg50_8x2_160k_cityscapes.py',
     (512, 1024)),
    'sctnet-b-seg75':
    ('configs/sctnet/cityscapes/sctnet-b_seg75_8x2_160k_cityscapes.py',
     (768, 1536)),
    'sctnet-b-seg100':
    ('configs/sctnet/cityscapes/sctnet-b_seg100_8x2_160k_cityscapes.py',
     (1024, 2048)),
    'sctnet-s-ade': ('configs/sctnet/ADE20K/sctnet-s_8x4_160k_ade.py',
                     (512, 512)),
    'sctnet-b-ade': ('configs/sctnet/ADE20K/sctnet-b_8x4_160k_ade.py',
                     (512, 512)),
    'sctnet-b-coco': ('configs/sctnet/COCO-Stuff-10K/sctnet_b_4x4_160k.py',
                      (640, 640)),
}

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


def resolve_config(path: str) -> str:
    """A config path as given, else relative to the repository root."""
    if osp.isfile(path):
        return path
    alt = osp.join(ROOT, path)
    if osp.isfile(alt):
        return alt
    raise DeployUsageError(f'config file not found: {path!r} (also looked '
                           f'in {ROOT})')


def resolve_device(name: Optional[str]) -> torch.device:
    """``cpu``/``cuda[:N]``; None picks cuda when available."""
    if name is None:
        name = 'cuda' if torch.cuda.is_available() else 'cpu'
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise DeployUsageError(f'unsupported --device {name!r} (cpu, cuda)')
    if dev.type == 'cuda' and not torch.cuda.is_available():
        raise DeployUsageError('--device cuda but torch sees no CUDA device '
                               f'(torch {torch.__version__}); use --device '
                               'cpu')
    if dev.type not in ('cpu', 'cuda'):
        raise DeployUsageError(f'unsupported --device {name!r} (cpu, cuda)')
    return dev


def device_name(dev: torch.device) -> str:
    """Human-readable name of the device the figures come from."""
    if dev.type == 'cuda':
        return torch.cuda.get_device_name(dev)
    fm = _cpu_family_model()
    return (f'{cpu_model()}{", " + fm if fm else ""} '
            f'({torch.get_num_threads()} threads)')


#: CPU flags worth stating next to CPU figures
REPORTED_FLAGS = ('avx2', 'fma', 'avx512f', 'avx512bw', 'avx512_vnni',
                  'avx_vnni', 'avx512_bf16', 'amx_tile', 'amx_bf16',
                  'amx_int8', 'avx512_fp16')


def _cpu_family_model() -> Optional[str]:
    """``family F model M`` from /proc/cpuinfo (what tells the CPU
    generation apart where the model name is generic, e.g. "AMD EPYC" of
    a virtual machine: family 25 = Zen 3/4, 26 = Zen 5)."""
    fields = {}
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if not line.strip():
                    break
                k, _, v = line.partition(':')
                fields[k.strip()] = v.strip()
    except OSError:
        return None
    if 'cpu family' not in fields:
        return None
    return f'family {fields["cpu family"]} model {fields.get("model", "?")}'


def cpu_description() -> dict:
    """CPU model, the SIMD flags that matter here, torch's capability."""
    flags = cpu_flags()
    return dict(
        cpu=cpu_model(),
        cpu_family_model=_cpu_family_model(),
        cpu_flags=[f for f in REPORTED_FLAGS if f in flags],
        torch_cpu_capability=torch.backends.cpu.get_cpu_capability(),
        threads=torch.get_num_threads())


def prepare(segmentor: nn.Module,
            device: torch.device,
            deploy: bool = False,
            channels_last: Optional[bool] = None,
            fp16: bool = False,
            resize: bool = True,
            dtype: str = 'fp32',
            dtype_mode: str = 'autocast') -> nn.Module:
    """The module the protocol times: ``img -> full-size logits``.

    ``channels_last`` None means: on for a deployed SCTNet, off otherwise.
    ``fp16`` (legacy) converts weights and expects a half input;
    ``dtype`` bf16/fp16 keeps fp32 in and out (:mod:`.dtype`).
    """
    if deploy:
        cl = True if channels_last is None else channels_last
        switch_to_deploy(segmentor, channels_last=cl)
    elif channels_last:
        segmentor.to(memory_format=torch.channels_last)
    model = SegmentorWithResize(segmentor, resize=resize).to(device).eval()
    if fp16:
        model.half()
    return with_dtype(model, dtype, device, dtype_mode)


def sync(dev: torch.device) -> None:
    if dev.type == 'cuda':
        torch.cuda.synchronize(dev)


def measure(model: Callable,
            inp: torch.Tensor,
            warmup: int = 10,
            min_time: float = 6.0,
            calib_time: float = 1.0,
            iters: Optional[int] = None,
            log: Callable = print) -> dict:
    """Latency of ``model(inp)`` under the protocol (see module docstring).

    Returns:
        dict with ``latency_ms`` (mean per forward), ``fps``
        (images per second: batch / latency), ``iterations``, ``seconds``.
    """
    dev = inp.device
    batch = inp.shape[0]
    with torch.inference_mode():
        for _ in range(warmup):
            model(inp)
        if iters is None:
            n = 1
            while True:
                sync(dev)
                t0 = time.perf_counter()
                for _ in range(n):
                    model(inp)
                sync(dev)
                elapsed = time.perf_counter() - t0
                if elapsed >= calib_time:
                    break
                n *= 2
            iters = max(1, int(math.ceil(n / elapsed * min_time)))
        log(f'  timing {iters} iteration(s)')
        sync(dev)
        t0 = time.perf_counter()
        for _ in range(iters):
            model(inp)
        sync(dev)
        elapsed = time.perf_counter() - t0
    latency = elapsed / iters * 1000
    return dict(
        latency_ms=latency,
        fps=batch * 1000 / latency,
        iterations=iters,
        seconds=elapsed)


def interleaved(runners: Dict[str, Callable[[], object]],
                rounds: int,
                iters: int = 1,
                warmup: int = 1,
                sync_dev: Optional[torch.device] = None,
                log: Callable = print) -> Dict[str, list]:
    """Time every runner in alternating rounds (A B C A B C ...).

    A change of background load then hits every runner alike. ``runners``
    maps a name to a no-argument callable (one forward). Returns the
    per-round mean latency in ms for every name.
    """
    times = {k: [] for k in runners}
    dev = sync_dev or torch.device('cpu')
    with torch.inference_mode():
        for fn in runners.values():
            for _ in range(warmup):
                fn()
        for r in range(rounds):
            for k, fn in runners.items():
                sync(dev)
                t0 = time.perf_counter()
                for _ in range(iters):
                    fn()
                sync(dev)
                times[k].append((time.perf_counter() - t0) / iters * 1e3)
            log(f'  round {r + 1}/{rounds}: ' + '  '.join(
                f'{k} {times[k][-1]:.1f}' for k in runners), flush=True)
    return times


def environment(dev: torch.device) -> dict:
    env = dict(
        device=device_name(dev),
        torch=torch.__version__,
        python=platform.python_version(),
        cudnn_benchmark=bool(torch.backends.cudnn.benchmark)
        if dev.type == 'cuda' else None,
        threads=torch.get_num_threads())
    if dev.type == 'cpu':
        env.update(cpu_description(), malloc=_malloc_mode)
    return env


def check_writable(path: Optional[str], overwrite: bool) -> None:
    """Refuse early to replace ``path`` unless ``overwrite``."""
    if path and osp.exists(path) and not overwrite:
        raise DeployUsageError(f'{path} exists; pass --overwrite or choose '
                               'another path')


def write_json(path: str, data: dict, overwrite: bool = False) -> None:
    """Write ``data``; an existing file is kept unless ``overwrite``."""
    check_writable(path, overwrite)
    d = osp.dirname(osp.abspath(path))
    os.makedirs(d, exist_ok=True)
    with open(path, 'w') as f:
        json.dump(data, f, indent=2)
        f.write('\n')


def set_threads(threads: Optional[int]) -> None:
    if threads:
        torch.set_num_threads(threads)


#: ``--malloc`` choices (see :func:`set_malloc`)
MALLOC_MODES = ('glibc', 'cached')
_malloc_mode = 'glibc'


def set_malloc(mode: Optional[str]) -> None:
    """How this process's C allocator serves PyTorch's CPU tensors.

    * ``glibc``: untouched. glibc serves every block above its mmap
      threshold (128 KiB to 32 MiB, adaptive) with a fresh ``mmap`` and
      unmaps it on free, so each forward at 512x1024 page-faults (and the
      kernel zeroes) its large activations again: 10-20 % of an eager
      SCTNet-B forward on a 2-core Zen 4 (docs/deploy.md, section 8).
    * ``cached``: ``mallopt(M_MMAP_MAX, 0)`` and ``mallopt(M_TRIM_THRESHOLD,
      1 GiB)``: blocks come from the heap and freed memory stays mapped, so
      later forwards reuse the same pages, as onnxruntime's arena does and
      as jemalloc/tcmalloc (``LD_PRELOAD``) do. Process-wide and one-way
      (memory is kept until exit); for timing and deployment processes.

    ``None`` leaves the process as it is.

    Raises:
        DeployUsageError: unknown mode, ``glibc`` after ``cached``, or no
            glibc ``mallopt`` (not Linux).
    """
    global _malloc_mode
    if mode is None:
        return
    if mode not in MALLOC_MODES:
        raise DeployUsageError(f'--malloc {mode!r}: one of '
                               f'{", ".join(MALLOC_MODES)}')
    if mode == _malloc_mode:
        return
    if _malloc_mode == 'cached':
        raise DeployUsageError('--malloc glibc: this process already keeps '
                               'freed memory (--malloc cached is one-way)')
    if mode == 'cached':
        import ctypes
        try:
            mallopt = ctypes.CDLL('libc.so.6').mallopt
        except (OSError, AttributeError):
            raise DeployUsageError(
                '--malloc cached needs glibc\'s mallopt (Linux); elsewhere '
                'preload jemalloc or tcmalloc instead') from None
        m_trim_threshold, m_mmap_max = -1, -4  # <malloc.h>
        if not (mallopt(m_mmap_max, 0) and
                mallopt(m_trim_threshold, 1 << 30)):
            raise DeployUsageError('--malloc cached: mallopt refused the '
                                   'settings')
    _malloc_mode = mode


def _check_shape(shape) -> None:
    if shape and min(shape) < 32:
        raise DeployUsageError(f'--shape {list(shape)}: height and width '
                               'must be >= 32')


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
                iters: Optional[int] = None,
                threads: Optional[int] = None,
                malloc: Optional[str] = None,
                json: Optional[str] = None,
                overwrite: bool = False) -> dict:
    """``speed/torch_speed.py``: one model under the official protocol.

    ``fp16`` is the official script's switch (weights and input in half
    precision, GPU); ``dtype`` bf16/fp16 runs under :mod:`.dtype` (refused
    where the device has no native support).
    """
    dev = resolve_device(device)
    set_threads(threads)
    set_malloc(malloc)
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
    check_writable(json, overwrite)
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
    if json:
        write_json(json, result, overwrite=overwrite)
        print(f'wrote {json}')
    return result


def random_model(cfg_path: str, seed: int = 0) -> nn.Module:
    """The benchmarks' model: the config's network with seeded random
    weights and non-trivial BN statistics, the same in every run and
    process (agreement and error figures are then reproducible); the
    global RNG is left as it was."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = build_inference_model(resolve_config(cfg_path))
    randomize_bn_statistics(model, seed)
    return model


def randomize_bn_statistics(model: nn.Module, seed: int = 0) -> None:
    """Non-trivial BN statistics (in place), so that folding errors show."""
    g = torch.Generator().manual_seed(seed)
    for mod in model.modules():
        if isinstance(mod, torch.nn.modules.batchnorm._BatchNorm):
            mod.running_mean.copy_(
                torch.randn(mod.num_features, generator=g) * 0.1)
            mod.running_var.copy_(
                torch.rand(mod.num_features, generator=g) + 0.5)
            mod.bias.data.copy_(
                torch.randn(mod.num_features, generator=g) * 0.1)


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


def parse_names(text: str, known: Sequence[str], what: str) -> list:
    """``'a,b'`` -> ``['a', 'b']``, each checked against ``known``."""
    names = [v.strip() for v in text.split(',') if v.strip()]
    bad = [v for v in names if v not in known]
    if bad or not names:
        raise DeployUsageError(f'{what}: unknown {bad}; choose from '
                               f'{list(known)}')
    return names


def deploy_speedup(type: str = 'sctnet-b-seg50',
                   shape: Optional[Sequence[int]] = None,
                   device: Optional[str] = None,
                   variants: Sequence[str] = DEFAULT_DEPLOY_VARIANTS,
                   rounds: int = 5,
                   iters: int = 1,
                   warmup: int = 3,
                   threads: Optional[int] = None,
                   malloc: Optional[str] = None,
                   json: Optional[str] = None,
                   overwrite: bool = False) -> dict:
    """``speed/deploy_speedup.py``: the deploy variants, interleaved.

    Per variant: median and minimum of the per-round mean latencies, the
    speed-up of the median against the first variant, and the maximum
    relative difference of its output from the first variant's.
    """
    if isinstance(variants, str):
        variants = parse_names(variants, DEPLOY_VARIANTS, '--variants')
    dev = resolve_device(device)
    set_threads(threads)
    set_malloc(malloc)
    _check_shape(shape)
    check_writable(json, overwrite)
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
    if json:
        write_json(json, result, overwrite=overwrite)
        print(f'wrote {json}')
    return result
