"""The demo (``tools/demo.py``, ``make demo``) as reusable steps.

    data -> teacher -> convert -> student -> test -> outputs/summary

Each step is a function of plain values that returns a dict for the
summary; :func:`run_demo` chains them. Every step is the package function
of a tool (:func:`~mmseg_sctnet.apis.train.build_train_config`,
:func:`~mmseg_sctnet.apis.convert.convert_teacher`,
:func:`~mmseg_sctnet.apis.test.test`) and the summary lists the equivalent
command. Other experiments are loops over the same steps; e.g. an ablation
of SIAM over seeds trains, from one data set and one teacher,
``train_student(..., teacher_file=t, seed=s)`` and
``train_student(..., teacher_file=None, seed=s)`` for each seed ``s`` and
evaluates each with :func:`evaluate`.

Console output goes through MMEngine's logger; :class:`QuietConsoleRunner`
leaves MMEngine's environment report, config dump, hook order and
per-parameter optimizer lines out of the console (a ``logging.Filter`` on
its console handler; the log files keep everything). Curves are drawn from
the scalars MMEngine's ``LocalVisBackend`` writes (``vis_data/
scalars.json``).
"""
import argparse
import json
import os
import os.path as osp
import shutil
import time
from typing import List, Optional, Sequence, Tuple

import cv2
import numpy as np
import torch
from mmengine.config import DictAction
from mmengine.runner import Runner

from ..datasets import CLASSES_STREET, make_cityscapes
from ..engine.amp import amp_optim_wrapper
from ..engine.distributed import cuda_available
from ..engine.evaluation_run import build_test_config, run_test
from ..engine.runner import QuietConsoleRunner
from ..engine.training_run import (build_train_config, build_train_runner,
                                   last_checkpoint, run_training)
from ..io.config import REPO_ROOT, load_config
from ..io.cpu import cpu_family_model, cpu_model
from ..io.errors import ConfigError, PathError
from ..io.files import write_json
from ..pretrain.teacher import convert_teacher
from ..visualization.pyplot import pyplot

__all__ = [
    'TEACHER_CFG', 'STUDENT_CFG', 'DEFAULT_DATA_ROOT', 'repo_path',
    'prepare_data', 'generated_settings', 'data_options', 'iters_options',
    'train_run',
    'train_teacher', 'convert', 'train_student', 'evaluate', 'read_scalars',
    'plot_curves', 'make_grid', 'iou_table', 'write_summary', 'run_demo'
]

ROOT = REPO_ROOT
TEACHER_CFG = 'configs/demo/segformer_mit-b0_demo_cityscapes.py'
STUDENT_CFG = 'configs/demo/sctnet-s_demo_cityscapes.py'
DEFAULT_DATA_ROOT = 'data/demo_cityscapes'  # what the demo configs read
STAMP = '.sctnet_demo.json'
#: the smallest image side the demo teacher and student train on
MIN_SIZE = 32
GENERATOR_VERSION = 2  # bump when render_scene changes
#: loss terms drawn in curves.png (those present in the run)
CURVE_TERMS = ('loss', 'decode.loss_ce', 'aux_0.loss_ce',
               'siam.loss_sdha_logits', 'siam.loss_sdha_feat',
               'siam.loss_bfa_stage4', 'siam.loss_bfa_stage3')


def _display(path: str) -> str:
    """``path`` relative to the repository when inside it."""
    rel = osp.relpath(osp.abspath(path), ROOT)
    return path if rel.startswith('..') else rel


def repo_path(path: Optional[str]) -> Optional[str]:
    """A user path (relative to where a tool was started) relative to the
    repository root, where the configs' paths start (absolute when it
    lies outside)."""
    if path is None:
        return None
    rel = osp.relpath(osp.abspath(path), ROOT)
    return osp.abspath(path) if rel.startswith('..') else rel


def _quote(a: str) -> str:
    return f"'{a}'" if any(c in a for c in ' ()[],') else a


def _command(tool: str, argv: Sequence[str]) -> str:
    return f'python {tool} ' + ' '.join(_quote(str(a)) for a in argv)


def _parse(options: Sequence[str]) -> Optional[dict]:
    """``['k=v', ...]`` (command-line form) -> the dict ``--cfg-options``
    gives (MMEngine's ``DictAction``)."""
    if not options:
        return None
    p = argparse.ArgumentParser()
    p.add_argument('--cfg-options', nargs='+', action=DictAction)
    return p.parse_args(['--cfg-options', *options]).cfg_options


# ----------------------------------------------------------------------
# 1. data
def prepare_data(root: str = DEFAULT_DATA_ROOT,
                 n_train: int = 320,
                 n_val: int = 80,
                 size: Sequence[int] = (128, 256),
                 seed: int = 0,
                 scenes: str = 'street') -> dict:
    """Generate the street scenes (Cityscapes layout) into ``root``, or
    reuse them when the stamp written there matches these settings.
    ``scenes``: ``'street'`` or ``'context'`` (where cars and people are
    told apart only by the sky, far away: :func:`~mmseg_sctnet.datasets.
    synthetic.render_scene`).

    A folder the demo did not write (no stamp) is never touched.
    """
    spec = dict(generator=GENERATOR_VERSION, layout='cityscapes',
                n_train=n_train, n_val=n_val, size=list(size), seed=seed)
    if scenes != 'street':  # street stamps stay as they were
        spec['scenes'] = scenes
    stamp = osp.join(root, STAMP)
    t0 = time.time()
    if osp.isfile(stamp):
        with open(stamp) as f:
            old = json.load(f)
        if old == spec:
            print(f'  reusing {root} ({n_train} train / {n_val} val images, '
                  f'{size[0]}x{size[1]})')
            return dict(spec, root=root, reused=True, seconds=0.0)
        print(f'  {root} was generated with other settings {old}; '
              'generating again')
        shutil.rmtree(root)
    elif osp.exists(root) and os.listdir(root):
        raise PathError(f'{root} exists and was not written by the demo (no '
                        f'{STAMP}); pass another --data-root or remove it.')
    tmp = root.rstrip('/') + '.tmp'
    if osp.exists(tmp):
        shutil.rmtree(tmp)
    make_cityscapes(tmp, n_train=n_train, n_val=n_val, size=tuple(size),
                    seed=seed, scenes=scenes)
    with open(osp.join(tmp, STAMP), 'w') as f:
        json.dump(spec, f)
    if osp.exists(root):
        os.rmdir(root)  # empty
    os.replace(tmp, root)
    print(f'  wrote {root}: {n_train} train / {n_val} val {scenes} images '
          f'({size[0]}x{size[1]}), Cityscapes layout')
    return dict(spec, root=root, reused=False,
                seconds=round(time.time() - t0, 1))


def generated_settings(root: str) -> dict:
    """The :func:`prepare_data` keywords the data in ``root`` was generated
    with (its stamp), so that a later step reuses it as it is; ``{}`` (the
    defaults) for a folder without a stamp."""
    stamp = osp.join(root, STAMP)
    if not osp.isfile(stamp):
        return {}
    with open(stamp) as f:
        spec = json.load(f)
    keys = ('n_train', 'n_val', 'size', 'seed', 'scenes')
    return {k: spec[k] for k in keys if k in spec}


def data_options(data_root: str = DEFAULT_DATA_ROOT,
                 batch_size: Optional[int] = None,
                 num_workers: Optional[int] = None,
                 size: Optional[Sequence[int]] = None) -> List[str]:
    """``--cfg-options`` of both demo configs for another data folder,
    batch size, number of loader workers or image size ``(h, w)``.

    The demo configs resize to, crop and pad at the size of the images
    :func:`prepare_data` writes by default (128x256); data generated at
    another ``size`` is trained and tested at that size (the train
    RandomResize and test Resize scale, the crop and the padding follow it),
    not resized back to 128x256.
    """
    loaders = ('train_dataloader', 'val_dataloader', 'test_dataloader')
    opts = []
    if data_root.rstrip('/') != DEFAULT_DATA_ROOT:
        opts += [f'{dl}.dataset.data_root={data_root.rstrip("/")}/'
                 for dl in loaders]
    if batch_size:
        opts.append(f'train_dataloader.batch_size={batch_size}')
    if num_workers is not None:
        for dl in loaders:
            opts += [f'{dl}.num_workers={num_workers}',
                     f'{dl}.persistent_workers={num_workers > 0}']
    if size is not None:
        opts += _size_options(tuple(size))
    return opts


def _size_options(size: Tuple[int, int]) -> List[str]:
    """:func:`data_options` for images of ``size`` (h, w): nothing at the
    configs' own size. The two demo configs share the dataset base (the
    pipelines read here) and pad to its ``crop_size``."""
    h, w = size
    if min(h, w) < MIN_SIZE:
        raise ConfigError(f'--size {h} {w}: the demo models need images of '
                          f'at least {MIN_SIZE}x{MIN_SIZE} (their last '
                          'stages have stride 32)')
    cfg = load_config(osp.join(ROOT, STUDENT_CFG))
    if size == tuple(cfg.crop_size):
        return []
    opts = [f'model.data_preprocessor.size=({h},{w})']
    for dl in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        for i, t in enumerate(cfg[dl].dataset.pipeline):
            key = f'{dl}.dataset.pipeline.{i}'
            if t['type'] in ('RandomResize', 'Resize'):
                opts.append(f'{key}.scale=({w},{h})')
            elif t['type'] == 'RandomCrop':
                opts.append(f'{key}.crop_size=({h},{w})')
    return opts


def iters_options(iters: Optional[int]) -> List[str]:
    """``--cfg-options`` for ``iters`` training iterations (validation 4
    times, one checkpoint at the end, warm-up a tenth)."""
    if not iters:
        return []
    return [
        f'train_cfg.max_iters={iters}',
        f'train_cfg.val_interval={max(1, -(-iters // 4))}',
        f'default_hooks.checkpoint.interval={iters}',
        f'param_scheduler.0.end={max(1, iters // 10)}',
        f'param_scheduler.1.end={iters}',
    ]


# ----------------------------------------------------------------------
# 2.-4. training and conversion
def train_run(config: str, work_dir: str, options: Sequence[str] = (),
              quiet: bool = True, hooks: Sequence = (),
              amp: bool = False) -> dict:
    """``tools/train.py CONFIG --work-dir WORK_DIR [--amp] --cfg-options
    OPTIONS`` in this process, with ``hooks`` (Hook objects) registered on
    top of the config's. Returns the checkpoint, log dir, seconds,
    iterations, last validation mIoU (when validated; its per-class values
    too when the config's val evaluator is ``PerClassIoUMetric``), ``amp``
    and the command."""
    argv = [config, '--work-dir', work_dir] + (['--amp'] if amp else [])
    if options:
        argv += ['--cfg-options', *options]
    cfg = build_train_config(config, work_dir, amp=amp,
                             cfg_options=_parse(options))
    runner = build_train_runner(
        cfg, runner_cls=QuietConsoleRunner if quiet else Runner)
    for hook in hooks:
        runner.register_hook(hook)
    t0 = time.time()
    run_training(runner)
    seconds = time.time() - t0
    ckpt = last_checkpoint(work_dir)
    if ckpt is None:
        raise PathError(f'training wrote no checkpoint in {work_dir}')
    out = dict(checkpoint=_display(ckpt), log_dir=runner.log_dir,
               seconds=round(seconds, 1), max_iters=runner.max_iters,
               amp=amp, command=_command('tools/train.py', argv))
    val = read_scalars(runner.log_dir)[1]
    if val:
        out['val_mIoU'] = round(float(val[-1]['mIoU']), 2)
        per_class = [getattr(m, 'per_class', None)
                     for m in runner.val_loop.evaluator.metrics]
        if per_class and per_class[0]:
            out['per_class'] = per_class[0]
    return out


def train_teacher(out_dir: str, options: Sequence[str] = (),
                  iters: Optional[int] = None, quiet: bool = True,
                  amp: bool = False) -> dict:
    """Step 2: the MiT-B0 SegFormer teacher, plain MMSegmentation, in
    ``out_dir/teacher`` (``amp``: ``tools/train.py --amp``)."""
    return train_run(TEACHER_CFG, osp.join(out_dir, 'teacher'),
                     list(options) + iters_options(iters), quiet, amp=amp)


def convert(checkpoint: str, out_file: str) -> dict:
    """Step 3: SegFormer checkpoint -> teacher file (``tools/pth_convert.py
    --force``; ``out_file`` is the demo's own output)."""
    convert_teacher(checkpoint, out_file, force=True)
    return dict(output=out_file,
                command=_command('tools/pth_convert.py',
                                 [checkpoint, out_file]))


def train_student(out_dir: str, options: Sequence[str] = (),
                  teacher_file: Optional[str] = None,
                  iters: Optional[int] = None,
                  seed: Optional[int] = None,
                  work_name: str = 'student', quiet: bool = True,
                  hooks: Sequence = (), amp: bool = False,
                  config: str = STUDENT_CFG) -> dict:
    """Step 4: the student of ``config`` (SCTNet-S by default; any config
    with an ``EncoderDecoderDistill`` model, e.g. those of configs/siam) in
    ``out_dir/<work_name>``, with SIAM from ``teacher_file``, or without
    SIAM (``model.use_siam=False``) when it is None. ``seed``:
    ``randomness.seed`` (initial weights and data order); the same seed
    gives the same start with and without SIAM. ``amp``: mixed precision
    (``tools/train.py --amp``: fp16 on a CUDA GPU, bf16 on a CPU with
    native bf16, refused elsewhere)."""
    opts = list(options) + iters_options(iters)
    if teacher_file is None:
        opts.append('model.use_siam=False')
    else:
        opts.append(f'model.siam_head.teacher_checkpoint={teacher_file}')
    if seed is not None:
        opts.append(f'randomness.seed={seed}')
    out = train_run(config, osp.join(out_dir, work_name), opts, quiet,
                    hooks, amp=amp)
    out.update(use_siam=teacher_file is not None, seed=seed)
    return out


# ----------------------------------------------------------------------
# 5. test
def evaluate(checkpoint: str, out_dir: str, options: Sequence[str] = (),
             pred_dir: Optional[str] = None, quiet: bool = True) -> dict:
    """Step 5: ``tools/test.py`` on the val split: metrics, per-class
    values, ``pred_dir`` PNGs (input | ground truth | prediction; the
    folder is replaced) and ``out_dir/test/metrics.json``."""
    work = osp.join(out_dir, 'test')
    metrics_json = osp.join(work, 'metrics.json')
    if pred_dir and osp.isdir(pred_dir):
        shutil.rmtree(pred_dir)  # the demo's own output of a previous run
    argv = [STUDENT_CFG, checkpoint, '--eval', 'mIoU', '--work-dir', work]
    if pred_dir:
        argv += ['--show-dir', pred_dir]
    argv += ['--metrics-json', metrics_json]
    if options:
        argv += ['--cfg-options', *options]
    cfg = build_test_config(STUDENT_CFG, checkpoint, work_dir=work,
                            show_dir=pred_dir, metrics_json=metrics_json,
                            eval_metrics=['mIoU'],
                            cfg_options=_parse(options))
    t0 = time.time()
    result = run_test(
        cfg, runner_cls=QuietConsoleRunner if quiet else Runner)
    result.update(config=STUDENT_CFG, checkpoint=checkpoint)
    write_json(metrics_json, result, overwrite=True)
    return dict(metrics=result['metrics'], per_class=result['per_class'],
                seconds=round(time.time() - t0, 1), metrics_json=metrics_json,
                command=_command('tools/test.py', argv))


# ----------------------------------------------------------------------
# outputs
def read_scalars(log_dir: str):
    """``(train, val)`` records of MMEngine's ``vis_data/scalars.json``."""
    path = osp.join(log_dir, 'vis_data', 'scalars.json')
    train, val = [], []
    if osp.isfile(path):
        with open(path) as f:
            for line in f:
                rec = json.loads(line)
                (val if 'mIoU' in rec else train).append(rec)
    return train, val


def plot_curves(out_png: str, student: dict, teacher: Optional[dict] = None,
                title: str = '') -> str:
    """Training losses of the student and val mIoU of student and teacher
    over the iterations, from their scalars."""
    plt = pyplot()
    s_train, s_val = read_scalars(student['log_dir'])
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(12, 4.2))
    for k in CURVE_TERMS:
        pts = [(r['step'], r[k]) for r in s_train if k in r]
        if pts:
            ax.plot(*zip(*pts), label=k, lw=2 if k == 'loss' else 1)
    ax.set(yscale='log', xlabel='iteration',
           title='SCTNet-S training losses')
    runs = [('SCTNet-S (student)', s_val)]
    if teacher is not None:
        runs.append(('SegFormer MiT-B0 (teacher)',
                     read_scalars(teacher['log_dir'])[1]))
    for name, val in runs:
        pts = [(r['step'], r['mIoU']) for r in val]
        if pts:
            ax2.plot(*zip(*pts), 'o-', label=name)
    ax2.set(ylim=(0, 100), xlabel='iteration', ylabel='val mIoU (%)',
            title='validation mIoU')
    for a, size in ((ax, 7), (ax2, 8)):
        a.grid(alpha=0.3)
        if a.lines:
            a.legend(fontsize=size)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(out_png, dpi=100)
    plt.close(fig)
    return out_png


def make_grid(pngs: Sequence[str], out_png: str) -> Optional[str]:
    """The PNGs stacked vertically (6 white pixels between them)."""
    imgs = [i for i in (cv2.imread(p) for p in pngs) if i is not None]
    if not imgs:
        return None
    w = max(i.shape[1] for i in imgs)
    rows = [np.pad(i, ((0, 6), (0, w - i.shape[1]), (0, 0)),
                   constant_values=255) for i in imgs]
    cv2.imwrite(out_png, np.concatenate(rows, axis=0))
    return out_png


def iou_table(per_class: dict) -> str:
    """Markdown table of per-class IoU and Acc."""

    def fmt(x):
        return 'n/a' if x is None else f'{x:.2f}'

    lines = ['| class | IoU (%) | Acc (%) |', '|---|---:|---:|']
    lines += [f'| {c} | {fmt(v.get("IoU"))} | {fmt(v.get("Acc"))} |'
              for c, v in per_class.items()]
    return '\n'.join(lines)


def write_summary(out_dir: str, s: dict) -> None:
    """``summary.json`` and ``summary.md`` of a demo run."""
    with open(osp.join(out_dir, 'summary.json'), 'w') as f:
        json.dump(s, f, indent=2)
    m = s['test']['metrics']
    mode = 'without SIAM (model.use_siam=False)' if s['no_siam'] else \
        'with SIAM (BFA + SDHA from the SegFormer teacher)'
    d = s['data']
    md = [
        f'# SCTNet demo: SCTNet-S {mode}', '',
        f'**val mIoU: {m["mIoU"]:.2f}** (aAcc {m["aAcc"]:.2f}, mAcc '
        f'{m["mAcc"]:.2f}) on {d["n_val"]} validation images, '
        f'{len(s["classes"])} classes.', '',
        f'Total time {s["seconds_total"]:.0f} s on {s["machine"]}' +
        (', trained in mixed precision (--amp).' if s.get('amp') else '.'),
        '',
        '## Per-class IoU', '',
        iou_table(s['test']['per_class']), '', '## Steps', '',
        f'1. data: `{d["root"]}`, {d["n_train"]} train / {d["n_val"]} '
        f'val images of {d["size"][0]}x{d["size"][1]}, Cityscapes layout, '
        f'seed {d["seed"]} ({"reused" if d["reused"] else "generated"}, '
        f'{d["seconds"]:.0f} s). Classes: {", ".join(s["classes"])}; read '
        "by MMSegmentation's CityscapesDataset with these 8 classes as "
        'metainfo (all other trainIds ignored).'
    ]
    if s.get('teacher'):
        t = s['teacher']
        miou = t.get('val_mIoU', float('nan'))
        md.append(f'2. teacher: SegFormer MiT-B0, {t["max_iters"]} '
                  f'iterations, val mIoU {miou:.2f} '
                  f'({t["seconds"]:.0f} s): `{t["command"]}`')
        md.append(f'3. convert: `{s["convert"]["command"]}`')
    elif s.get('teacher_file'):
        md.append(f'2./3. teacher given: `{s["teacher_file"]}`')
    st = s['student']
    md.append(f'4. student: SCTNet-S, {st["max_iters"]} iterations '
              f'({st["seconds"]:.0f} s): `{st["command"]}`')
    md.append(f'5. test ({s["test"]["seconds"]:.0f} s): '
              f'`{s["test"]["command"]}`')
    if s.get('other_mode'):
        o = s['other_mode']
        md += [
            '', '## With and without SIAM', '', '| run | val mIoU |',
            '|---|---:|',
            f'| this run ({"no SIAM" if s["no_siam"] else "SIAM"}) | '
            f'{m["mIoU"]:.2f} |',
            f'| {o["name"]} (`{o["summary"]}`) | {o["mIoU"]:.2f} |'
        ]
    md += ['', '## Files', '']
    md += [f'- {k}: `{v}`' for k, v in s['files'].items()]
    with open(osp.join(out_dir, 'summary.md'), 'w') as f:
        f.write('\n'.join(md) + '\n')


def _machine() -> str:
    if torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    fm = cpu_family_model()
    return (f'{cpu_model()}{" (" + fm + ")" if fm else ""}, '
            f'{os.cpu_count()} cores, {torch.get_num_threads()} torch '
            'threads')


def _other_mode(out: str, no_siam: bool) -> Optional[dict]:
    """The summary of the run in the other mode, when it exists."""
    other = osp.join(osp.dirname(osp.abspath(out)), 'summary.json') \
        if no_siam else osp.join(out, 'no_siam', 'summary.json')
    if not osp.isfile(other):
        return None
    with open(other) as f:
        o = json.load(f)
    if o.get('no_siam') == no_siam:
        return None
    return dict(name='no SIAM' if o['no_siam'] else 'SIAM',
                mIoU=o['test']['metrics']['mIoU'], summary=_display(other))


def run_demo(out_dir: str,
             data_root: str = DEFAULT_DATA_ROOT,
             no_siam: bool = False,
             n_train: int = 320,
             n_val: int = 80,
             size: Sequence[int] = (128, 256),
             teacher_iters: Optional[int] = None,
             student_iters: Optional[int] = None,
             batch_size: Optional[int] = None,
             teacher: Optional[str] = None,
             num_workers: Optional[int] = None,
             seed: int = 0,
             grid: int = 6,
             verbose: bool = False,
             scenes: str = 'street',
             amp: bool = False) -> dict:
    """The whole demo into ``out_dir`` (paths relative to the repository
    root, which the configs' data paths are). ``amp``: the teacher and the
    student train with ``tools/train.py --amp``. Returns the summary."""
    t_start = time.time()
    quiet = not verbose
    if teacher and not osp.isfile(teacher):
        raise PathError(f'--teacher file not found: {teacher}')
    if n_train < 1 or n_val < 1:
        raise ConfigError('--n-train and --n-val must be at least 1')
    common = data_options(data_root, batch_size, num_workers, size)
    if amp:  # refused here, before the data, where it cannot run
        amp_optim_wrapper(cuda_available())
    os.makedirs(out_dir, exist_ok=True)
    steps = 4 if no_siam or teacher else 5
    step = iter(range(1, steps + 1))
    s = dict(no_siam=no_siam, amp=amp, machine=_machine(),
             classes=list(CLASSES_STREET), out_dir=out_dir)

    print(f'[{next(step)}/{steps}] data')
    s['data'] = prepare_data(data_root, n_train, n_val, size, seed, scenes)
    teacher_file = teacher
    if not no_siam and not teacher:
        print(f'[{next(step)}/{steps}] teacher: SegFormer MiT-B0 with '
              f'MMSegmentation ({TEACHER_CFG})')
        s['teacher'] = train_teacher(out_dir, common, teacher_iters, quiet,
                                     amp)
        print(f'[{next(step)}/{steps}] convert the teacher '
              '(tools/pth_convert.py)')
        teacher_file = osp.join(out_dir, 'teacher',
                                'segformer_mit-b0_teacher.pth')
        s['convert'] = convert(s['teacher']['checkpoint'], teacher_file)
    s['teacher_file'] = teacher_file
    print(f'[{next(step)}/{steps}] student: SCTNet-S ' +
          ('without SIAM (model.use_siam=False)' if no_siam else
           'with SIAM from the teacher') + f' ({STUDENT_CFG})')
    s['student'] = train_student(out_dir, common,
                                 None if no_siam else teacher_file,
                                 student_iters, quiet=quiet, amp=amp)
    print(f'[{next(step)}/{steps}] test on the val split (tools/test.py)')
    pred_dir = osp.join(out_dir, 'predictions')
    s['test'] = evaluate(s['student']['checkpoint'], out_dir, common,
                         pred_dir, quiet)
    m = s['test']['metrics']

    curves = plot_curves(
        osp.join(out_dir, 'curves.png'), s['student'], s.get('teacher'),
        f'SCTNet-S {"without" if no_siam else "with"} SIAM on the demo '
        f'data: val mIoU {m["mIoU"]:.2f}')
    pngs = sorted(osp.join(pred_dir, f) for f in os.listdir(pred_dir)
                  if f.endswith('.png'))
    grid_png = make_grid(pngs[:grid],
                         osp.join(out_dir, 'predictions_grid.png'))
    table = osp.join(out_dir, 'miou_table.md')
    with open(table, 'w') as f:
        f.write(iou_table(s['test']['per_class']) +
                f'\n\nmIoU {m["mIoU"]:.2f}\n')
    other = _other_mode(out_dir, no_siam)
    if other:
        s['other_mode'] = other
    s['files'] = dict(
        summary=osp.join(out_dir, 'summary.md'),
        miou_table=table,
        curves=curves,
        predictions=pred_dir + '/ (input | ground truth | prediction)',
        predictions_grid=grid_png,
        checkpoint=s['student']['checkpoint'],
        metrics=s['test']['metrics_json'])
    if teacher_file:
        s['files']['teacher'] = teacher_file
    s['seconds_total'] = round(time.time() - t_start, 1)
    write_summary(out_dir, s)

    print('\n' + '=' * 70)
    print(f'SCTNet-S {"without" if no_siam else "with"} SIAM: val mIoU '
          f'{m["mIoU"]:.2f} (aAcc {m["aAcc"]:.2f}) in '
          f'{s["seconds_total"]:.0f} s')
    print(iou_table(s['test']['per_class']))
    if other:
        print(f'{other["name"]} run ({other["summary"]}): val mIoU '
              f'{other["mIoU"]:.2f}')
    print('Outputs:')
    for k, v in s['files'].items():
        print(f'  {k:17s} {v}')
    print('=' * 70)
    return s
