"""A ready check of a CUDA machine: ``tools/gpu_check.sh`` (docs/speed.md).

One command runs, each step as its own process from the repository root,
and prints one markdown table of what ran, its figures, and what was
skipped and why:

1. the official speed protocol, ``speed/torch_speed.py --device cuda``,
   fp32 and ``--fp16``, for SCTNet-S and -B at their official sizes (the
   five Cityscapes types; ``--types``), beside the official FPS (RTX 3090);
2. training of SCTNet-S Seg50 with SIAM (its MiT-B2 teacher randomly
   initialised: no teacher file is needed, the cost is the same) at the
   official crop (512x1024) and 8 images per GPU, on generated
   Cityscapes-layout data (:func:`~mmseg_sctnet.datasets.make_cityscapes`),
   ``tools/train.py`` in fp32 and with ``--amp``: seconds per iteration,
   images per second, peak GPU memory, loss finite;
3. the same with ``--amp`` on two processes with SyncBN
   (``tools/dist_train.sh CONFIG 2``) when two or more GPUs are visible;
4. ONNX export of the trained student (``tools/export_onnx.py``, fp32,
   checked with onnxruntime when it is installed) and TensorRT fp16
   (``trtexec --fp16``, else the ``tensorrt`` Python package) when either
   is installed, beside the official TensorRT fp16 FPS.

Every output (logs, JSON files, checkpoints, the table as ``gpu_check.md``
and ``gpu_check.json``) goes to a new folder under ``--out-dir``. Without a
visible CUDA device the check is refused with one ``error:`` line before
anything runs. The exit status is 1 when a step failed.
"""
import glob
import importlib.util
import json
import os
import os.path as osp
import re
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch

from ..datasets import make_cityscapes
from ..io.config import REPO_ROOT
from ..io.errors import DeployUsageError, DeviceUnavailableError
from ..io.files import check_output_dir, write_file, write_json
from .harness import MODEL_TYPES, parse_names

__all__ = [
    'CheckResult', 'format_table', 'cuda_devices', 'require_cuda',
    'run_gpu_check', 'SPEED_TYPES', 'STEPS'
]

#: the official speed table's types (Cityscapes, SCTNet-S and -B)
SPEED_TYPES = ('sctnet-s-seg50', 'sctnet-s-seg75', 'sctnet-b-seg50',
               'sctnet-b-seg75', 'sctnet-b-seg100')
#: official FPS (RTX 3090, torch 1.11; README model zoo): PyTorch fp32 and
#: TensorRT fp16
OFFICIAL_FPS = {
    'sctnet-s-seg50': (160.3, 451.2),
    'sctnet-s-seg75': (149.2, 233.3),
    'sctnet-b-seg50': (144.9, 374.6),
    'sctnet-b-seg75': (105.2, 186.6),
    'sctnet-b-seg100': (62.8, 105.0),
}
#: the training check: SCTNet-S Seg50 (SIAM, SyncBN), its official size
TRAIN_TYPE = 'sctnet-s-seg50'
TRAIN_BATCH = 8  # official images per GPU
LOG_WINDOW = 10  # MMEngine's LogProcessor averages the time over 10 steps
STEPS = ('speed', 'train', 'dist', 'tensorrt')
OK, FAILED, SKIPPED = 'ok', 'failed', 'skipped'


@dataclass
class CheckResult:
    """One row of the table."""
    check: str
    status: str  # ok / failed / skipped
    figures: str = ''
    note: str = ''


def _cell(text: str) -> str:
    """A markdown table cell: one line, ``|`` escaped."""
    text = ' '.join(str(text).split())
    return text.replace('|', '\\|')


def format_table(results: Sequence[CheckResult]) -> str:
    """The markdown table of ``results``, one row each, in order."""
    lines = ['| check | result | figures | notes |', '|---|---|---|---|']
    for r in results:
        lines.append('| ' + ' | '.join(
            _cell(x) for x in (r.check, r.status, r.figures, r.note)) + ' |')
    return '\n'.join(lines) + '\n'


# -- the device ----------------------------------------------------------
def cuda_devices() -> List[str]:
    """Names of the CUDA devices PyTorch sees (empty without any)."""
    if not torch.cuda.is_available():
        return []
    return [
        torch.cuda.get_device_name(i)
        for i in range(torch.cuda.device_count())
    ]


def _nvidia_smi() -> str:
    exe = shutil.which('nvidia-smi')
    if exe is None:
        return 'nvidia-smi: not found'
    try:
        out = subprocess.run([exe, '-L'], capture_output=True, text=True,
                             timeout=20)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f'nvidia-smi -L: {type(e).__name__}'
    gpus = [ln for ln in out.stdout.splitlines() if ln.startswith('GPU ')]
    if out.returncode != 0:
        last = (out.stderr or out.stdout).strip().splitlines()
        return (f'nvidia-smi -L: exit {out.returncode}'
                f'{": " + last[-1] if last else ""}')
    return f'nvidia-smi lists {len(gpus)} GPU(s)'


def require_cuda() -> List[str]:
    """The visible CUDA devices; refused (one line) when there is none."""
    devices = cuda_devices()
    if devices:
        return devices
    built = torch.version.cuda
    hidden = os.environ.get('CUDA_VISIBLE_DEVICES')
    raise DeviceUnavailableError(
        'no CUDA device is visible: torch.cuda.is_available() is False '
        f'(torch {torch.__version__}, ' +
        (f'built with CUDA {built}' if built else 'a CPU-only build') +
        f'; {_nvidia_smi()}' +
        (f'; CUDA_VISIBLE_DEVICES={hidden!r}' if hidden is not None else '')
        + '). tools/gpu_check.sh checks a GPU machine: run it where '
        'nvidia-smi lists a GPU, with a CUDA build of PyTorch.')


# -- running the steps ---------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _run(cmd: List[str], log: str, timeout: float,
         env: Optional[Dict[str, str]] = None) -> Tuple[int, str]:
    """Run ``cmd`` from the repository root, its output also to ``log``;
    (exit status, output). A timeout is status -1."""
    full_env = dict(os.environ, **(env or {}))
    full_env['PYTHONPATH'] = os.pathsep.join(
        p for p in (REPO_ROOT, os.environ.get('PYTHONPATH')) if p)
    full_env.setdefault('PYTHON', sys.executable)
    print('$ ' + ' '.join(cmd), flush=True)
    try:
        res = subprocess.run(
            cmd, cwd=REPO_ROOT, env=full_env, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, timeout=timeout)
        status, out = res.returncode, res.stdout
    except subprocess.TimeoutExpired as e:
        out = e.stdout.decode() if isinstance(e.stdout, bytes) else (
            e.stdout or '')
        status, out = -1, out + f'\n(timed out after {timeout:.0f} s)'
    write_file(log, out.encode(), overwrite=True)
    return status, out


def _failure(status: int, out: str, log: str) -> str:
    """Why a step failed, in one line: its last error line and its log."""
    lines = [ln.strip() for ln in out.splitlines() if ln.strip()]
    errs = [ln for ln in lines if ln.startswith('error:')
            or 'Error' in ln.split(':')[0]]
    why = (errs or lines or ['no output'])[-1]
    what = 'timed out' if status == -1 else f'exit {status}'
    return f'{what}: {why[:200]} (log: {log})'


def _speed(types: Sequence[str], out_dir: str,
           timeout: float) -> List[CheckResult]:
    rows = []
    os.makedirs(osp.join(out_dir, 'speed'), exist_ok=True)
    for t in types:
        h, w = MODEL_TYPES[t][1]
        official = OFFICIAL_FPS.get(t, (None, None))[0]
        for fp16 in (False, True):
            name = f'{t}{"_fp16" if fp16 else ""}'
            out_json = osp.join(out_dir, 'speed', name + '.json')
            log = osp.join(out_dir, 'speed', name + '.log')
            cmd = [sys.executable, 'speed/torch_speed.py', '--type', t,
                   '--device', 'cuda', '--json', out_json]
            if fp16:
                cmd.append('--fp16')
            check = (f'speed/torch_speed.py --type {t} '
                     f'{"--fp16" if fp16 else "(fp32)"}, 1x3x{h}x{w}')
            status, out = _run(cmd, log, timeout)
            if status != 0 or not osp.isfile(out_json):
                rows.append(CheckResult(check, FAILED,
                                        note=_failure(status, out, log)))
                continue
            with open(out_json) as f:
                res = json.load(f)
            figures = f'{res["fps"]:.1f} FPS ({res["latency_ms"]:.2f} ms)'
            note = (f'official fp32 {official} FPS (RTX 3090, torch 1.11)'
                    if official and not fp16 else '')
            rows.append(CheckResult(check, OK, figures, note))
    return rows


def _train_options(data_root: str, iters: int) -> List[str]:
    opts = [
        'model.backbone.init_cfg=None',  # no ImageNet file needed
        'model.siam_head.teacher_checkpoint=None',  # random MiT-B2 teacher
        f'train_cfg.max_iters={iters}',
        f'train_cfg.val_interval={iters}',
        f'default_hooks.checkpoint.interval={iters}',
        'default_hooks.logger.interval=1',
        f'train_dataloader.batch_size={TRAIN_BATCH}',
    ]
    for dl in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        opts.append(f'{dl}.dataset.data_root={data_root}')
    return opts


def _train_figures(work_dir: str, procs: int) -> Tuple[Optional[str], str]:
    """(figures, problem) from a run's ``vis_data/scalars.json``."""
    files = sorted(glob.glob(osp.join(work_dir, '*', 'vis_data',
                                      'scalars.json')))
    if not files:
        return None, f'no scalars.json under {work_dir}'
    recs = []
    with open(files[-1]) as f:
        for line in f:
            rec = json.loads(line)
            if 'loss' in rec:
                recs.append(rec)
    if not recs:
        return None, 'no training iteration was logged'
    losses = [r['loss'] for r in recs]
    if not all(isinstance(x, (int, float)) and x == x and abs(x) != float(
            'inf') for x in losses):
        return None, f'non-finite loss: {losses}'
    # MMEngine logs the mean time of the last LOG_WINDOW iterations
    sec = recs[-1]['time']
    first = recs[max(0, len(recs) - LOG_WINDOW)]['iter']
    mem = max((r.get('memory', 0) for r in recs), default=0)
    figures = (f'{sec:.3f} s/iter (mean of iterations {first}-'
               f'{recs[-1]["iter"]}), {procs * TRAIN_BATCH / sec:.1f} '
               f'images/s, peak memory {mem / 1024:.1f} GiB per GPU, loss '
               f'{losses[0]:.3f} -> {losses[-1]:.3f}')
    return figures, ''


def _checkpoint(work_dir: str) -> Optional[str]:
    ckpts = glob.glob(osp.join(work_dir, 'iter_*.pth'))
    return max(ckpts, key=osp.getmtime) if ckpts else None


def _train(kind: str, data_root: str, out_dir: str, iters: int,
           timeout: float) -> Tuple[CheckResult, Optional[str]]:
    """One training check: ``kind`` fp32 / amp / dist; (row, checkpoint)."""
    cfg = MODEL_TYPES[TRAIN_TYPE][0]
    work = osp.join(out_dir, f'train_{kind}')
    log = work + '.log'
    env = None
    if kind == 'dist':
        cmd = ['bash', 'tools/dist_train.sh', cfg, '2']
        env = {'MASTER_PORT': str(_free_port())}
        check = (f'tools/dist_train.sh (2 GPUs x {TRAIN_BATCH}, SyncBN) '
                 '--amp')
    else:
        cmd = [sys.executable, 'tools/train.py', cfg]
        check = (f'tools/train.py (1 GPU x {TRAIN_BATCH}) ' +
                 ('--amp' if kind == 'amp' else 'fp32'))
    check += f', {TRAIN_TYPE} + SIAM, {iters} iterations'
    cmd += ['--work-dir', work]
    if kind in ('amp', 'dist'):
        cmd.append('--amp')
    cmd += ['--cfg-options'] + _train_options(data_root, iters)
    status, out = _run(cmd, log, timeout, env)
    if status != 0:
        return CheckResult(check, FAILED,
                           note=_failure(status, out, log)), None
    figures, problem = _train_figures(work, 2 if kind == 'dist' else 1)
    if problem:
        return CheckResult(check, FAILED, note=f'{problem} (log: {log})'), \
            None
    note = 'SyncBN over both processes' if kind == 'dist' else ''
    return CheckResult(check, OK, figures, note), _checkpoint(work)


def _tensorrt_backend() -> Optional[str]:
    if shutil.which('trtexec'):
        return 'trtexec'
    if importlib.util.find_spec('tensorrt') is not None:
        return 'tensorrt'
    return None


def _trtexec_fps(onnx_file: str, log: str,
                 timeout: float) -> Tuple[Optional[str], str]:
    engine = osp.splitext(onnx_file)[0] + '_fp16.engine'
    cmd = ['trtexec', f'--onnx={onnx_file}', '--fp16',
           f'--saveEngine={engine}', '--duration=6']
    status, out = _run(cmd, log, timeout)
    if status != 0:
        return None, _failure(status, out, log)
    qps = re.search(r'Throughput:\s*([\d.]+)\s*qps', out)
    mean = re.search(r'GPU Compute Time:.*?mean = ([\d.]+) ms', out)
    if not qps:
        return None, f'no "Throughput" in the trtexec output (log: {log})'
    return (f'{float(qps.group(1)):.1f} FPS (trtexec throughput' +
            (f', GPU compute {float(mean.group(1)):.2f} ms' if mean else '')
            + ')'), ''


def _tensorrt_python_fps(onnx_file: str, seconds: float = 6.0) -> str:
    """Build an fp16 engine with the ``tensorrt`` package and time it
    (static input shape, CUDA tensors of PyTorch as buffers)."""
    import tensorrt as trt  # optional: only where TensorRT is installed
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    flag = getattr(trt.NetworkDefinitionCreationFlag, 'EXPLICIT_BATCH', None)
    network = builder.create_network(0 if flag is None else 1 << int(flag))
    parser = trt.OnnxParser(network, logger)
    with open(onnx_file, 'rb') as f:
        if not parser.parse(f.read()):
            raise RuntimeError(f'TensorRT cannot parse {onnx_file}: '
                               f'{parser.get_error(0)}')
    config = builder.create_builder_config()
    config.set_flag(trt.BuilderFlag.FP16)
    plan = builder.build_serialized_network(network, config)
    if plan is None:
        raise RuntimeError('TensorRT could not build an fp16 engine')
    engine = trt.Runtime(logger).deserialize_cuda_engine(plan)
    context = engine.create_execution_context()
    dtypes = {trt.DataType.FLOAT: torch.float32, trt.DataType.HALF:
              torch.float16}
    buffers = []
    for i in range(engine.num_io_tensors):
        name = engine.get_tensor_name(i)
        buf = torch.zeros(
            tuple(context.get_tensor_shape(name)),
            dtype=dtypes[engine.get_tensor_dtype(name)],
            device='cuda')
        buffers.append(buf)
        context.set_tensor_address(name, buf.data_ptr())
    stream = torch.cuda.Stream()

    def run(n):
        for _ in range(n):
            context.execute_async_v3(stream.cuda_stream)
        stream.synchronize()

    run(20)  # warm-up
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        run(10)
        n += 10
    ms = (time.perf_counter() - t0) * 1000 / n
    return f'{1000 / ms:.1f} FPS ({ms:.2f} ms, tensorrt {trt.__version__})'


def _tensorrt(ckpt: Optional[str], out_dir: str,
              timeout: float) -> List[CheckResult]:
    cfg, (h, w) = MODEL_TYPES[TRAIN_TYPE]
    check = f'ONNX -> TensorRT fp16, {TRAIN_TYPE} 1x3x{h}x{w}'
    backend = _tensorrt_backend()
    if backend is None:
        return [CheckResult(
            check, SKIPPED,
            note='neither trtexec (on PATH) nor the tensorrt Python '
            'package is installed')]
    if ckpt is None:
        return [CheckResult(check, SKIPPED,
                            note='no trained checkpoint (the training '
                            'check failed or was skipped)')]
    os.makedirs(osp.join(out_dir, 'onnx'), exist_ok=True)
    onnx_file = osp.join(out_dir, 'onnx', f'{TRAIN_TYPE}_{h}x{w}.onnx')
    log = osp.join(out_dir, 'onnx', 'export.log')
    cmd = [sys.executable, 'tools/export_onnx.py', cfg, ckpt, '--shape',
           str(h), str(w), '--out', onnx_file]
    checked = importlib.util.find_spec('onnxruntime') is not None
    if not checked:
        cmd.append('--no-check')
    status, out = _run(cmd, log, timeout)
    rows = [CheckResult(
        f'tools/export_onnx.py (fp32), {TRAIN_TYPE} 1x3x{h}x{w}',
        OK if status == 0 else FAILED,
        note=('checked against PyTorch in onnxruntime' if checked else
              'not checked: onnxruntime is not installed')
        if status == 0 else _failure(status, out, log))]
    if status != 0:
        rows.append(CheckResult(check, SKIPPED, note='no ONNX file'))
        return rows
    official = OFFICIAL_FPS[TRAIN_TYPE][1]
    note = f'official {official} FPS (RTX 3090)'
    if backend == 'trtexec':
        figures, problem = _trtexec_fps(
            onnx_file, osp.join(out_dir, 'onnx', 'trtexec.log'), timeout)
    else:
        try:
            figures, problem = _tensorrt_python_fps(onnx_file), ''
        except Exception as e:  # report, go on with the table
            figures, problem = None, f'{type(e).__name__}: {e}'
    rows.append(CheckResult(f'{check} ({backend})',
                            FAILED if problem else OK, figures or '',
                            problem or note))
    return rows


def run_gpu_check(out_dir: str = 'work_dirs/gpu_check',
                  types: Optional[str] = None,
                  train_iters: int = 20,
                  skip: Optional[str] = None,
                  timeout: float = 900.0,
                  devices: Optional[List[str]] = None,
                  print_fn: Callable[[str], None] = print) -> dict:
    """``tools/gpu_check.sh``: run the checks, print and write the table.

    Args:
        out_dir: a new folder ``<out_dir>/<date>-<time>`` gets every output.
        types: comma-separated ``--type`` names of the speed check
            (default :data:`SPEED_TYPES`).
        train_iters: iterations of each training check (at least 11).
        skip: comma-separated steps of :data:`STEPS` to leave out.
        timeout: seconds allowed to each command.
        devices: the visible CUDA devices (default: asked; refused when
            there is none, before anything runs).

    Returns ``dict(results=[...], table=..., out_dir=...)``.
    """
    devices = require_cuda() if devices is None else devices
    speed_types = parse_names(types, MODEL_TYPES, '--types') \
        if types else list(SPEED_TYPES)
    skipped = set(parse_names(skip, STEPS, '--skip')) if skip else set()
    if train_iters <= LOG_WINDOW:
        raise DeployUsageError(
            f'--train-iters {train_iters}: at least {LOG_WINDOW + 1} (the '
            f'time is the mean of the last {LOG_WINDOW} iterations, which '
            'must leave out the first, with cudnn.benchmark\'s search).')
    # absolute: the steps run in the repository root
    run_dir = osp.abspath(
        osp.join(out_dir, time.strftime('%Y%m%d-%H%M%S')))
    check_output_dir(run_dir, what='--out-dir')
    os.makedirs(run_dir, exist_ok=True)

    results = [CheckResult(
        'CUDA devices', OK, f'{len(devices)}: ' + ', '.join(devices),
        f'torch {torch.__version__}, CUDA {torch.version.cuda}, cuDNN '
        f'{torch.backends.cudnn.version()}')]

    def why_not(step):
        return f'--skip {step}' if step in skipped else None

    if why_not('speed'):
        results.append(CheckResult('speed/torch_speed.py', SKIPPED,
                                   note=why_not('speed')))
    else:
        results += _speed(speed_types, run_dir, timeout)

    ckpt = None
    run_dist = not why_not('dist') and len(devices) >= 2
    data_root = None
    if not why_not('train') or run_dist:
        data_root = osp.join(run_dir, 'data')
        h, w = MODEL_TYPES[TRAIN_TYPE][1]
        make_cityscapes(data_root, n_train=2 * TRAIN_BATCH, n_val=2,
                        size=(h, w))
    if why_not('train'):
        results.append(CheckResult('tools/train.py fp32 and --amp', SKIPPED,
                                   note=why_not('train')))
    else:
        for kind in ('fp32', 'amp'):
            row, got = _train(kind, data_root, run_dir, train_iters,
                              timeout)
            results.append(row)
            ckpt = got or ckpt
    dist_check = f'tools/dist_train.sh (2 GPUs x {TRAIN_BATCH}, SyncBN)'
    if why_not('dist'):
        results.append(CheckResult(dist_check, SKIPPED,
                                   note=why_not('dist')))
    elif not run_dist:
        results.append(CheckResult(
            dist_check, SKIPPED,
            note=f'{len(devices)} GPU visible; two are needed'))
    else:
        row, got = _train('dist', data_root, run_dir, train_iters, timeout)
        results.append(row)
        ckpt = ckpt or got

    if why_not('tensorrt'):
        results.append(CheckResult('ONNX -> TensorRT fp16', SKIPPED,
                                   note=why_not('tensorrt')))
    else:
        results += _tensorrt(ckpt, run_dir, timeout)

    table = format_table(results)
    write_file(osp.join(run_dir, 'gpu_check.md'), table.encode(),
               overwrite=True)
    write_json(osp.join(run_dir, 'gpu_check.json'),
               dict(results=[asdict(r) for r in results]), overwrite=True)
    print_fn('')
    print_fn(table)
    print_fn(f'(outputs and logs: {run_dir})')
    return dict(results=results, table=table, out_dir=run_dir)
