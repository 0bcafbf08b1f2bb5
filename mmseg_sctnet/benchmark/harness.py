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

:func:`measure` is the protocol, :func:`interleaved` the round-robin
timing of the comparisons (:mod:`.speed`, :mod:`.backends`,
:mod:`.peers`); :func:`environment` what every figure is printed with;
:func:`benchmark` the options every one-result benchmark takes.
"""
import ctypes
import functools
import inspect
import math
import platform
import time
from typing import Callable, Dict, Optional, Sequence

import torch
import torch.nn as nn

from ..deploy.dtype import with_dtype
from ..deploy.model import SegmentorWithResize, build_inference_model
from ..io.config import resolve_config
from ..io.cpu import cpu_description, cpu_family_model, cpu_model
from ..io.errors import DeployUsageError
from ..io.files import check_output_file
from ..io.files import write_json as _write_json
from ..models.deploy_form import switch_to_deploy

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
    fm = cpu_family_model()
    return (f'{cpu_model()}{", " + fm if fm else ""} '
            f'({torch.get_num_threads()} threads)')


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


def _timed(model: Callable, inp: torch.Tensor, n: int) -> float:
    """Seconds of ``n`` calls of ``model(inp)``, the device synchronised
    before and after."""
    sync(inp.device)
    t0 = time.perf_counter()
    for _ in range(n):
        model(inp)
    sync(inp.device)
    return time.perf_counter() - t0


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
    batch = inp.shape[0]
    with torch.inference_mode():
        for _ in range(warmup):
            model(inp)
        if iters is None:
            n = 1
            while True:
                elapsed = _timed(model, inp, n)
                if elapsed >= calib_time:
                    break
                n *= 2
            iters = max(1, int(math.ceil(n / elapsed * min_time)))
        log(f'  timing {iters} iteration(s)')
        elapsed = _timed(model, inp, iters)
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
    """Refuse early to replace ``path`` unless ``overwrite`` (also when it
    cannot be written)."""
    if path:
        check_output_file(path, overwrite=overwrite,
                          exists_hint='pass --overwrite or choose another '
                          'path')


def write_json(path: str, data: dict, overwrite: bool = False) -> None:
    """Write ``data`` atomically; an existing file is kept unless
    ``overwrite``."""
    check_writable(path, overwrite)
    _write_json(path, data, overwrite=overwrite)


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


_HARNESS_OPTIONS = [
    inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default,
                      annotation=annotation)
    for name, default, annotation in (('threads', None, Optional[int]),
                                      ('malloc', None, Optional[str]),
                                      ('json', None, Optional[str]),
                                      ('overwrite', False, bool))
]


def benchmark(fn: Callable[..., dict]) -> Callable[..., dict]:
    """Give a benchmark that returns one result dict the harness options.

    The decorated function also takes ``threads`` (torch threads, set
    before ``fn`` runs), ``malloc`` (:func:`set_malloc`), ``json`` (refused
    before ``fn`` runs when it exists and ``overwrite`` is not given; the
    result is written there atomically afterwards) and ``overwrite``: the
    ``--threads/--malloc/--json/--overwrite`` of the ``speed/`` scripts.
    """

    @functools.wraps(fn)
    def run(*args, **kwargs) -> dict:
        opts = {p.name: kwargs.pop(p.name, p.default)
                for p in _HARNESS_OPTIONS}
        set_threads(opts['threads'])
        set_malloc(opts['malloc'])
        check_writable(opts['json'], opts['overwrite'])
        result = fn(*args, **kwargs)
        if opts['json']:
            write_json(opts['json'], result, overwrite=opts['overwrite'])
            print(f'wrote {opts["json"]}')
        return result

    sig = inspect.signature(fn)
    run.__signature__ = sig.replace(
        parameters=[*sig.parameters.values(), *_HARNESS_OPTIONS])
    return run


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


def parse_names(text: str, known: Sequence[str], what: str) -> list:
    """``'a,b'`` -> ``['a', 'b']``, each checked against ``known``."""
    names = [v.strip() for v in text.split(',') if v.strip()]
    bad = [v for v in names if v not in known]
    if bad or not names:
        raise DeployUsageError(f'{what}: unknown {bad}; choose from '
                               f'{list(known)}')
    return names
