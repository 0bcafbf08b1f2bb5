"""Speed of one SCTNet by backend, in one process (the body of
``speed/compare_backends.py``; see docs/deploy.md).

One random-weight model (non-trivial BN statistics) is turned into every
backend, all fed the same input, timed in interleaved rounds (A B C ... A B
C ...: a change of background load hits every backend alike), with the
final upsampling to the input size included and batch 1:

========================  ================================================
``eager``                 the model as trained (PyTorch fp32, NCHW)
``deploy``                ``switch_to_deploy`` (folded BNs, channels-last)
``deploy-compile``        ``deploy`` through ``torch.compile`` with
                          Inductor freezing (pre-packed weights)
``ort-fp32``              the exported ONNX file in onnxruntime (CPU)
``ort-int8``              the same file, static int8 (QDQ, per channel;
                          the default float parts of ``--int8``)
``ort-int8-all``          int8 with no float parts (all ops onnxruntime
                          can quantize)
``bf16``                  ``deploy`` under ``torch.autocast`` bf16 (CPUs
                          with AVX512-BF16/AMX, bf16 GPUs)
``bf16-weights``          ``deploy`` with bf16 weights and activations
``bf16-compile``          ``bf16-weights`` through ``torch.compile``
                          with freezing (on request: it measured 5-10 %
                          slower than ``bf16-weights`` on Zen 4)
``fp16``                  ``deploy`` under autocast fp16 (GPU only)
========================  ================================================

A backend the machine cannot run (bf16 without native support, ONNX
Runtime on a GPU run, fp16 on CPU) is listed under ``skipped`` with the
reason, never replaced silently. The int8 calibration here uses random
inputs (the latency does not depend on the weights' values); accuracy of
int8 and bf16 is measured on data by ``speed/compare_accuracy.py``.

The onnxruntime sessions here do not spin: by default onnxruntime's
worker threads busy-wait after each run, and on a small CPU that steals
the cores from the PyTorch backend timed next (measured on a 2-core Zen 4:
eager 526-574 ms after a non-spinning int8 session, 609-696 ms after a
spinning one; the int8 session itself is a few ms slower without spinning).
"""
import copy
import functools
import os
import os.path as osp
import statistics
import tempfile
import textwrap
from typing import Callable, Dict, Optional, Sequence

import torch

from ..deploy import quantize as Q
from ..deploy.dtype import LowPrecision, check_dtype
from ..deploy.model import SegmentorWithResize, compile_for_inference
from ..deploy.onnx_export import exportable, write_onnx
from ..deploy.onnx_runtime import ort_session
from ..io.errors import DeployUsageError, UserError
from ..models.deploy_form import switch_to_deploy
from ..visualization.pyplot import pyplot
from . import harness as H

BACKENDS = ('eager', 'deploy', 'deploy-compile', 'ort-fp32', 'ort-int8',
            'ort-int8-all', 'bf16', 'bf16-weights', 'bf16-compile', 'fp16')
DEFAULT_BACKENDS = ('eager', 'deploy', 'deploy-compile', 'ort-fp32',
                    'ort-int8', 'bf16')
REFERENCE = 'eager'


def size_mb(runner) -> float:
    """Size of what a backend deploys: the ONNX file, or the bytes of the
    module's tensors (what a deploy checkpoint of it would hold)."""
    if isinstance(runner, _OrtRunner):
        return osp.getsize(runner.path) / 2**20
    mod = getattr(runner, '_orig_mod', runner)  # torch.compile wrapper
    return sum(t.numel() * t.element_size()
               for t in mod.state_dict().values()) / 2**20


class _OrtRunner:
    """``x (torch) -> logits (numpy)`` through an onnxruntime session."""

    def __init__(self, path: str, threads: int):
        self.path = path
        self.session = ort_session(path, threads, spinning=False)
        self.name = self.session.get_inputs()[0].name

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(
            self.session.run(None, {self.name: x.numpy()})[0])


def _export(deployed: torch.nn.Module, shape, tmp: str, int8: bool,
            calib_num: int, log: Callable,
            float_parts: Optional[Sequence[str]] = None) -> str:
    fp32 = osp.join(tmp, 'fp32.onnx')
    if not osp.exists(fp32):
        write_onnx(exportable(deployed),
                   torch.randn(1, 3, *shape), fp32)
    if not int8:
        return fp32
    if float_parts is None:
        float_parts = Q.DEFAULT_FLOAT_PARTS
    out = osp.join(tmp, f'int8_{"_".join(float_parts) or "all"}.onnx')
    g = torch.Generator().manual_seed(1)
    calib = [torch.randn(1, 3, *shape, generator=g).numpy()
             for _ in range(calib_num)]
    Q.quantize_int8(fp32, out, calib, float_parts=float_parts, log=log)
    return out


def build_backend(name: str, base: torch.nn.Module, dev: torch.device,
                  shape, tmp: str, calib_num: int = 4,
                  log: Callable = print) -> Callable:
    """A callable ``x -> logits`` for backend ``name``.

    Raises:
        UserError: the backend cannot run here (the reason is reported).
    """
    def deployed():
        return switch_to_deploy(copy.deepcopy(base), channels_last=True)

    if name == 'eager':
        return SegmentorWithResize(copy.deepcopy(base)).to(dev).eval()
    if name == 'deploy':
        return SegmentorWithResize(deployed()).to(dev).eval()
    if name == 'deploy-compile':
        return compile_for_inference(
            SegmentorWithResize(deployed()).to(dev).eval())
    if name in ('ort-fp32', 'ort-int8', 'ort-int8-all'):
        if dev.type != 'cpu':
            raise DeployUsageError(f'{name}: onnxruntime runs on the CPU '
                                   'here (no CUDA provider installed); '
                                   'use --device cpu')
        path = _export(switch_to_deploy(copy.deepcopy(base),
                                        channels_last=False),
                       shape, tmp, name != 'ort-fp32', calib_num, log,
                       [] if name == 'ort-int8-all' else None)
        return _OrtRunner(path, torch.get_num_threads())
    if name in ('bf16', 'bf16-weights', 'bf16-compile', 'fp16'):
        dtype = name.split('-')[0]
        check_dtype(dtype, dev)
        mode = 'autocast' if name in ('bf16', 'fp16') else 'weights'
        low = LowPrecision(
            SegmentorWithResize(deployed()).to(dev).eval(), dtype, mode,
            dev.type)
        return compile_for_inference(low) if name.endswith(
            '-compile') else low
    raise DeployUsageError(f'unknown backend {name!r}; one of {BACKENDS}')


def draw_chart(rows: Dict[str, dict], path: str, title: str) -> None:
    """Horizontal latency bars with the speed-up against eager."""
    plt = pyplot()
    names = list(rows)
    lat = [rows[n]['latency_ms'] for n in names]
    fig, ax = plt.subplots(figsize=(8, 0.5 * len(names) + 1.6))
    colors = ['#7f7f7f' if n == REFERENCE else '#d62728' if n.startswith(
        'ort') else '#1f77b4' for n in names]
    y = list(range(len(names)))[::-1]
    ax.barh(y, lat, color=colors)
    ax.set_yticks(y)
    ax.set_yticklabels(names)
    top = max(lat)
    for yi, n in zip(y, names):
        r = rows[n]
        ax.text(r['latency_ms'] + top * 0.01, yi,
                f'{r["latency_ms"]:.1f} ms  {r["speedup"]:.2f}x', va='center',
                fontsize=8)
    ax.set_xlim(0, top * 1.35)
    ax.set_xlabel('latency per image, ms (median of interleaved rounds; '
                  'lower is faster)')
    ax.set_title('\n'.join(textwrap.wrap(title, 100)), fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def format_table(rows: Dict[str, dict]) -> str:
    lines = ['| backend | median ms | min ms | speed-up vs eager | '
             'argmax agreement vs eager | max rel. err | size MiB |',
             '|---|---:|---:|---:|---:|---:|---:|']
    for n, r in rows.items():
        lines.append(
            f'| {n} | {r["latency_ms"]:.1f} | {r["min_ms"]:.1f} | '
            f'{r["speedup"]:.2f}x | {100 * r["agreement"]:.2f} % | '
            f'{r["max_rel_err"]:.1e} | {r["size_mb"]:.1f} |')
    return '\n'.join(lines)


def compare_backends(type: str = 'sctnet-b-seg50',
                     shape: Optional[Sequence[int]] = None,
                     device: Optional[str] = 'cpu',
                     backends: Sequence[str] = DEFAULT_BACKENDS,
                     rounds: int = 5,
                     iters: int = 1,
                     warmup: int = 2,
                     calib_num: int = 4,
                     threads: Optional[int] = None,
                     malloc: Optional[str] = None,
                     out_dir: Optional[str] = None,
                     json: Optional[str] = None,
                     overwrite: bool = False,
                     log: Callable = print) -> dict:
    """Time every backend; write ``table.txt``, ``chart.png`` and the JSON.

    The JSON's ``backends`` maps each timed backend to ``latency_ms``
    (median of the rounds), ``min_ms``, ``speedup`` (eager median / its
    median), ``agreement`` (share of pixels whose argmax equals eager's),
    ``max_rel_err``, ``size_mb`` (ONNX file, or the module's tensors) and
    ``rounds_ms``; ``skipped`` maps a backend that
    cannot run here to the reason; ``cpu``/``cpu_flags`` name the machine.
    """
    if isinstance(backends, str):
        backends = H.parse_names(backends, BACKENDS, '--backends')
    backends = list(backends)
    if REFERENCE not in backends:
        backends.insert(0, REFERENCE)
    if rounds < 1 or iters < 1:
        raise DeployUsageError('--rounds and --iters must be >= 1')
    dev = H.resolve_device(device)
    H.set_threads(threads)
    H.set_malloc(malloc)
    cfg_path, size = H.MODEL_TYPES[type]
    if shape:
        size = tuple(shape)
    if min(size) < 32:
        raise DeployUsageError(f'--shape {list(size)}: height and width '
                               'must be >= 32')
    out_dir = out_dir or osp.join(
        'work_dirs', 'speed', f'backends_{type}_{size[0]}x{size[1]}_'
        f'{dev.type}')
    files = dict(txt=osp.join(out_dir, 'table.txt'),
                 png=osp.join(out_dir, 'chart.png'),
                 json=json or osp.join(out_dir, 'results.json'))
    existing = [f for f in files.values() if osp.exists(f)]
    if existing and not overwrite:
        raise DeployUsageError(f'{existing} exist; pass --overwrite or '
                               'another --out-dir/--json')
    env = H.environment(dev)
    log(f'{type} at 1x3x{size[0]}x{size[1]} on {env["device"]}; '
        f'torch {env["torch"]}; CPU flags: '
        f'{" ".join(env.get("cpu_flags", [])) or "-"}')
    base = H.random_model(cfg_path)
    inp = torch.randn(1, 3, *size,
                      generator=torch.Generator().manual_seed(0)).to(dev)
    runners, skipped, sizes = {}, {}, {}
    with tempfile.TemporaryDirectory(prefix='sctnet_backends_') as tmp:
        for name in backends:
            log(f'building {name}', flush=True)
            try:
                runners[name] = build_backend(name, base, dev, size, tmp,
                                              calib_num, log)
                sizes[name] = size_mb(runners[name])
            except UserError as e:
                skipped[name] = str(e)
                log(f'  skipped {name}: {e}')
        outs = {}
        with torch.inference_mode():
            for name, fn in runners.items():
                # first call outside the rounds (compiles deploy-compile)
                outs[name] = fn(inp.cpu() if name.startswith('ort') else
                                inp).float().cpu()
        calls = {
            name: functools.partial(fn, inp.cpu() if name.startswith('ort')
                                    else inp)
            for name, fn in runners.items()
        }
        times = H.interleaved(calls, rounds, iters, max(0, warmup - 1), dev,
                              log)
    ref = outs[REFERENCE]
    ref_arg = ref.argmax(1)
    base_med = statistics.median(times[REFERENCE])
    rows = {}
    for name in runners:
        med = statistics.median(times[name])
        out = outs[name]
        rows[name] = dict(
            latency_ms=med,
            min_ms=min(times[name]),
            fps=1000.0 / med,
            speedup=base_med / med,
            agreement=float((out.argmax(1) == ref_arg).float().mean()),
            max_rel_err=float((out - ref).abs().max() / ref.abs().max()),
            size_mb=sizes[name],
            rounds_ms=times[name])
    title = (f'{type} 1x3x{size[0]}x{size[1]}, {env["device"]}, torch '
             f'{env["torch"]}, {rounds} interleaved rounds' +
             (f', malloc {env["malloc"]}' if 'malloc' in env else ''))
    table = format_table(rows)
    log('\n' + title + '\n' + table)
    for name, why in skipped.items():
        log(f'skipped {name}: {why}')
    os.makedirs(out_dir, exist_ok=True)
    with open(files['txt'], 'w') as f:
        f.write(title + '\n' + table + '\n' + ''.join(
            f'skipped {n}: {w}\n' for n, w in skipped.items()))
    import onnxruntime
    result = dict(type=type, config=cfg_path, shape=list(size),
                  rounds=rounds, iters=iters, warmup=warmup,
                  reference=REFERENCE, backends=rows, skipped=skipped,
                  onnxruntime=onnxruntime.__version__, **env)
    H.write_json(files['json'], result, overwrite=True)
    draw_chart(rows, files['png'], title)
    log(f'wrote {files["txt"]}, {files["json"]}, {files["png"]}')
    result['files'] = files
    return result
