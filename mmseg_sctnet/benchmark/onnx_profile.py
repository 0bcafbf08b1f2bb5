"""Where an ONNX file's time goes in onnxruntime: kernel time per op type.

``speed/profile_onnx.py`` is argparse plus :func:`profile_onnx`. It uses
onnxruntime's own profiler (``SessionOptions.enable_profiling``), which
records every node's kernel time; the first ``warmup`` runs are left out
(their times include one-off work: weight packing, arena growth). The
session is the deployment one: CPU provider, all graph optimisations
(constant folding included), worker threads that do not spin.
"""
import json as _json
import os
import os.path as osp
import shutil
import statistics
import tempfile
from collections import defaultdict
from typing import Callable, Optional, Sequence

import numpy as np

from ..deploy.onnx_runtime import onnx_io, ort_session
from ..io.cpu import cpu_description
from ..io.errors import DeployUsageError
from .harness import check_writable, write_json


def _input_shape(path: str, dims: list,
                 shape: Optional[Sequence[int]]) -> tuple:
    batch = dims[0] if isinstance(dims[0], int) else 1   # static or 1
    if shape:
        if min(shape) < 1:
            raise DeployUsageError(f'--shape {list(shape)}: sizes must be '
                                   '>= 1')
        if all(isinstance(d, int) for d in dims[2:]) and \
                tuple(dims[2:]) != tuple(shape):
            raise DeployUsageError(
                f'{path} has a static input size {dims[2]}x{dims[3]}; '
                f'--shape {shape[0]} {shape[1]} cannot run on it (leave '
                '--shape out, or export with --dynamic)')
        return (batch, dims[1], *shape)
    if not all(isinstance(d, int) for d in dims[2:]):
        raise DeployUsageError(f'{path} has a dynamic input size; give '
                               '--shape H W')
    return (batch, dims[1], *dims[2:])


def profile_onnx(model: str,
                 shape: Optional[Sequence[int]] = None,
                 threads: Optional[int] = None,
                 runs: int = 10,
                 warmup: int = 2,
                 top: int = 15,
                 json: Optional[str] = None,
                 trace: Optional[str] = None,
                 overwrite: bool = False,
                 log: Callable = print) -> dict:
    """Kernel time per op type (ms per run, share) and per-run latency.

    Returns (and writes to ``json``) ``ops``: op type -> ``ms`` (mean
    kernel time per run), ``share`` (of all kernel time), ``nodes``
    (nodes of that type executed per run); ``kernel_ms`` (sum),
    ``run_ms`` (median wall time of a run, as onnxruntime measures it),
    ``shape``, ``threads``, ``cpu``. ``trace`` keeps onnxruntime's Chrome
    trace file (``chrome://tracing``, Perfetto).
    """
    if runs < 1 or warmup < 0:
        raise DeployUsageError('--runs must be >= 1 and --warmup >= 0')
    check_writable(json, overwrite)
    check_writable(trace, overwrite)
    io = onnx_io(model)   # refuses a missing or damaged file
    shape = _input_shape(model, io['input_shape'], shape)
    import onnxruntime as ort
    tmp = tempfile.mkdtemp(prefix='sctnet_ort_profile_')
    try:
        sess = ort_session(model, threads, spinning=False,
                           profile_prefix=osp.join(tmp, 'ort'))
        name = sess.get_inputs()[0].name
        x = np.random.default_rng(0).standard_normal(
            shape, np.float32).astype(io['feed_dtype'])
        log(f'profiling {model} at {"x".join(map(str, shape))}, '
            f'{warmup} warm-up + {runs} runs, onnxruntime '
            f'{ort.__version__}, {threads or "default"} thread(s)')
        for _ in range(warmup + runs):
            sess.run(None, {name: x})
        trace_file = sess.end_profiling()
        with open(trace_file) as f:
            events = [e for e in _json.load(f) if e.get('ph') == 'X']
        if trace:
            os.makedirs(osp.dirname(osp.abspath(trace)), exist_ok=True)
            shutil.copyfile(trace_file, trace)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    run_events = sorted((e for e in events if e.get('name') == 'model_run'),
                        key=lambda e: e['ts'])
    if len(run_events) != warmup + runs:
        raise RuntimeError(f'onnxruntime recorded {len(run_events)} runs, '
                           f'expected {warmup + runs}')
    start = run_events[warmup]['ts']
    per_op = defaultdict(float)
    nodes = defaultdict(int)
    for e in events:
        if e.get('cat') == 'Node' and e['name'].endswith('_kernel_time') \
                and e['ts'] >= start:
            op = e.get('args', {}).get('op_name', '?')
            per_op[op] += e['dur'] / 1000 / runs
            nodes[op] += 1
    kernel = sum(per_op.values())
    ops = {
        op: dict(ms=ms, share=ms / kernel if kernel else 0.0,
                 nodes=nodes[op] // runs)
        for op, ms in sorted(per_op.items(), key=lambda kv: -kv[1])
    }
    run_ms = statistics.median(e['dur'] / 1000
                               for e in run_events[warmup:])
    result = cpu_description()   # cpu, cpu_flags, ...
    result.update(model=model, shape=list(shape), threads=threads,
                  runs=runs, warmup=warmup, onnxruntime=ort.__version__,
                  run_ms=run_ms, kernel_ms=kernel, ops=ops)
    log(format_profile(result, top))
    if json:
        write_json(json, result, overwrite=overwrite)
        log(f'wrote {json}')
    if trace:
        log(f'wrote {trace}')
    return result


def format_profile(result: dict, top: int = 15) -> str:
    """Markdown table of the ``top`` op types and a line for the rest."""
    lines = [
        f'{result["model"]}: run {result["run_ms"]:.1f} ms (median), '
        f'kernels {result["kernel_ms"]:.1f} ms per run; '
        f'{result.get("cpu", "?")}',
        '| op type | nodes | ms per run | share |', '|---|---:|---:|---:|'
    ]
    items = list(result['ops'].items())
    for op, row in items[:top]:
        lines.append(f'| {op} | {row["nodes"]} | {row["ms"]:.2f} | '
                     f'{100 * row["share"]:.1f} % |')
    rest = items[top:]
    if rest:
        lines.append(f'| ({len(rest)} other types) | '
                     f'{sum(r["nodes"] for _, r in rest)} | '
                     f'{sum(r["ms"] for _, r in rest):.2f} | '
                     f'{100 * sum(r["share"] for _, r in rest):.1f} % |')
    return '\n'.join(lines)
