"""Shared latency harness of the ``speed/`` scripts (PIDNet/SCTNet protocol).

Protocol (the official ``speed/torch_speed.py`` of SCTNet, itself PIDNet's):
batch 1, a random input at the test size, ``cudnn.benchmark`` on GPU,
10 warm-up runs, then a calibration that doubles the number of runs until
they take at least ``calib_time`` (1 s), the number of timed runs chosen so
that they take about ``min_time`` (6 s), and the mean latency of those runs
with the device synchronised before and after. The timed module includes
the final bilinear upsampling of the logits to the input size.

The official calibration starts at 100 runs, which takes minutes per step
on a CPU; starting at 1 run gives the same iteration count on a GPU.
"""
import json
import math
import os
import os.path as osp
import platform
import sys
import time
from typing import Callable, Dict, Optional

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402

import mmseg_sctnet  # noqa: E402,F401
from mmseg_sctnet.deploy import (SegmentorWithResize,  # noqa: E402
                                 switch_to_deploy)
from mmseg_sctnet.deploy.analysis import (count_flops,  # noqa: E402,F401
                                          inference_params)

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


def resolve_config(path: str) -> str:
    """A config path as given, else relative to the repository root."""
    if osp.isfile(path):
        return path
    alt = osp.join(ROOT, path)
    if osp.isfile(alt):
        return alt
    raise FileNotFoundError(f'config file not found: {path!r} (also looked '
                            f'in {ROOT})')


def resolve_device(name: Optional[str]) -> torch.device:
    """``cpu``/``cuda[:N]``; None picks cuda when available.

    Raises:
        SystemExit: CUDA asked for but not available.
    """
    if name is None:
        name = 'cuda' if torch.cuda.is_available() else 'cpu'
    dev = torch.device(name)
    if dev.type == 'cuda' and not torch.cuda.is_available():
        raise SystemExit('error: --device cuda but torch sees no CUDA device '
                         f'(torch {torch.__version__}); use --device cpu')
    if dev.type not in ('cpu', 'cuda'):
        raise SystemExit(f'error: unsupported --device {name!r} (cpu, cuda)')
    return dev


def device_name(dev: torch.device) -> str:
    """Human-readable name of the device the figures come from."""
    if dev.type == 'cuda':
        return torch.cuda.get_device_name(dev)
    name = platform.processor() or platform.machine()
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    name = line.split(':', 1)[1].strip()
                    break
    except OSError:
        pass
    return f'{name} ({torch.get_num_threads()} threads)'


def prepare(segmentor: nn.Module,
            device: torch.device,
            deploy: bool = False,
            channels_last: Optional[bool] = None,
            fp16: bool = False,
            resize: bool = True) -> nn.Module:
    """The module the protocol times: ``img -> full-size logits``.

    ``channels_last`` None means: on for a deployed SCTNet, off otherwise.
    """
    if deploy:
        cl = True if channels_last is None else channels_last
        switch_to_deploy(segmentor, channels_last=cl)
    elif channels_last:
        segmentor.to(memory_format=torch.channels_last)
    model = SegmentorWithResize(segmentor, resize=resize).to(device).eval()
    if fp16:
        model.half()
    return model


def _sync(dev: torch.device) -> None:
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
                _sync(dev)
                t0 = time.perf_counter()
                for _ in range(n):
                    model(inp)
                _sync(dev)
                elapsed = time.perf_counter() - t0
                if elapsed >= calib_time:
                    break
                n *= 2
            iters = max(1, int(math.ceil(n / elapsed * min_time)))
        log(f'  timing {iters} iteration(s)')
        _sync(dev)
        t0 = time.perf_counter()
        for _ in range(iters):
            model(inp)
        _sync(dev)
        elapsed = time.perf_counter() - t0
    latency = elapsed / iters * 1000
    return dict(
        latency_ms=latency,
        fps=batch * 1000 / latency,
        iterations=iters,
        seconds=elapsed)


def environment(dev: torch.device) -> dict:
    return dict(
        device=device_name(dev),
        torch=torch.__version__,
        python=platform.python_version(),
        cudnn_benchmark=bool(torch.backends.cudnn.benchmark)
        if dev.type == 'cuda' else None,
        threads=torch.get_num_threads())


def write_json(path: str, data: dict, overwrite: bool = False) -> None:
    """Write ``data``; an existing file is kept unless ``overwrite``."""
    if osp.exists(path) and not overwrite:
        raise SystemExit(f'error: {path} exists; pass --overwrite or choose '
                         'another path')
    d = osp.dirname(osp.abspath(path))
    os.makedirs(d, exist_ok=True)
    with open(path, 'w') as f:
        json.dump(data, f, indent=2)
        f.write('\n')
