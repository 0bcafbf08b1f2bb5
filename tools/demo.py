#!/usr/bin/env python
"""The whole SCTNet method on embedded data, on a CPU, in minutes.

    make demo                              # = python tools/demo.py
    python tools/demo.py --no-siam         # the same run without SIAM

1. data     procedural street scenes in the Cityscapes on-disk layout
            (data/demo_cityscapes; generated once, reused on re-runs)
2. teacher  a SegFormer (MiT-B0) trained with plain MMSegmentation
            (configs/demo/segformer_mit-b0_demo_cityscapes.py)
3. convert  tools/pth_convert.py: SegFormer checkpoint -> teacher weights
4. student  SCTNet-S trained with SIAM from that teacher
            (configs/demo/sctnet-s_demo_cityscapes.py)
5. test     tools/test.py on the val split: per-class IoU, mIoU and
            input | ground truth | prediction PNGs

Everything lands in one folder (demo_output/, or demo_output/no_siam with
--no-siam): summary.md / summary.json, miou_table.md, curves.png,
predictions/*.png, predictions_grid.png and the work dirs of each step.
Every step is an ordinary tool run; the summary lists the equivalent
commands.
"""
import argparse
import importlib.util
import json
import logging
import os
import os.path as osp
import platform
import shutil
import sys
import time

import _bootstrap  # noqa: F401

import numpy as np

_T0 = time.time()
TOOLS = osp.dirname(osp.abspath(__file__))
ROOT = osp.dirname(TOOLS)
TEACHER_CFG = 'configs/demo/segformer_mit-b0_demo_cityscapes.py'
DEFAULT_DATA_ROOT = 'data/demo_cityscapes'  # what the demo configs read
STUDENT_CFG = 'configs/demo/sctnet-s_demo_cityscapes.py'
STAMP = '.sctnet_demo.json'
GENERATOR_VERSION = 2  # bump when render_scene changes


def _display(path):
    """``path`` relative to the repository when inside it."""
    rel = osp.relpath(path, ROOT)
    return path if rel.startswith('..') else rel


def _load_tool(name):
    spec = importlib.util.spec_from_file_location(
        f'sctnet_tools_{name}', osp.join(TOOLS, name + '.py'))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description='SCTNet demo: data, teacher, conversion, SCTNet-S with '
        'SIAM, evaluation; all on CPU.')
    p.add_argument('--out-dir', help='output folder (default demo_output, '
                   'demo_output/no_siam with --no-siam)')
    p.add_argument(
        '--data-root',
        default=DEFAULT_DATA_ROOT,
        help='where the generated dataset lives (reused when it matches)')
    p.add_argument(
        '--no-siam',
        action='store_true',
        help='train the student without SIAM (model.use_siam=False): the '
        'ablation; no teacher is trained')
    p.add_argument('--n-train', type=int, default=320)
    p.add_argument('--n-val', type=int, default=80)
    p.add_argument(
        '--size',
        type=int,
        nargs=2,
        default=(128, 256),
        metavar=('H', 'W'),
        help='image size of the generated data')
    p.add_argument('--teacher-iters', type=int, default=None,
                   help='default: the teacher config\'s max_iters')
    p.add_argument('--student-iters', type=int, default=None,
                   help='default: the student config\'s max_iters')
    p.add_argument('--batch-size', type=int, default=None,
                   help='default: the configs\' batch size (8)')
    p.add_argument(
        '--teacher',
        help='use this converted teacher (tools/pth_convert.py output) '
        'instead of training one')
    p.add_argument('--num-workers', type=int, default=None,
                   help='data loader workers (default: the configs\')')
    p.add_argument('--seed', type=int, default=0, help='data seed')
    p.add_argument(
        '--grid', type=int, default=6,
        help='validation images in predictions_grid.png')
    p.add_argument(
        '--verbose',
        action='store_true',
        help='print the config dumps and environment reports of every run '
        '(they are always in the log files)')
    args = p.parse_args(argv)
    if args.out_dir is None:
        args.out_dir = osp.join('demo_output', 'no_siam') \
            if args.no_siam else 'demo_output'
    return args


# ----------------------------------------------------------------------
# 1. data
def prepare_data(args) -> dict:
    """Generate the dataset, or reuse it when its stamp matches."""
    from mmseg_sctnet.datasets import make_cityscapes
    spec = dict(
        generator=GENERATOR_VERSION,
        layout='cityscapes',
        n_train=args.n_train,
        n_val=args.n_val,
        size=list(args.size),
        seed=args.seed)
    root = args.data_root
    stamp = osp.join(root, STAMP)
    if osp.isfile(stamp):
        with open(stamp) as f:
            old = json.load(f)
        if old == spec:
            print(f'  reusing {root} ({args.n_train} train / {args.n_val} val '
                  f'images, {args.size[0]}x{args.size[1]})')
            return dict(spec, root=root, reused=True)
        print(f'  {root} was generated with other settings {old}; '
              'generating again')
        shutil.rmtree(root)
    elif osp.exists(root) and os.listdir(root):
        raise SystemExit(
            f'error: {root} exists and was not written by the demo (no '
            f'{STAMP}); pass another --data-root or remove it.')
    tmp = root.rstrip('/') + '.tmp'
    if osp.exists(tmp):
        shutil.rmtree(tmp)
    make_cityscapes(
        tmp,
        n_train=args.n_train,
        n_val=args.n_val,
        size=tuple(args.size),
        seed=args.seed)
    with open(osp.join(tmp, STAMP), 'w') as f:
        json.dump(spec, f)
    if osp.exists(root):
        os.rmdir(root)  # empty
    os.replace(tmp, root)
    print(f'  wrote {root}: {args.n_train} train / {args.n_val} val images '
          f'({args.size[0]}x{args.size[1]}), Cityscapes layout')
    return dict(spec, root=root, reused=False)


# ----------------------------------------------------------------------
class _ConsoleFilter:
    """stdout wrapper that keeps MMEngine's environment report, config dump,
    hook list and per-parameter optimizer lines off the console; they stay
    in each run's log file."""
    DROP = ('System environment:', 'Config:\n', 'Hooks will be executed',
            'paramwise_options --', '- torch.Size(')

    def __init__(self, stream):
        self._stream = stream

    def write(self, s):
        if any(d in s for d in self.DROP):
            return len(s)
        return self._stream.write(s)

    def __getattr__(self, name):
        return getattr(self._stream, name)


def _common_options(args, data_root):
    opts = []
    if data_root.rstrip('/') != DEFAULT_DATA_ROOT:
        root = data_root.rstrip('/') + '/'
        opts += [
            f'{dl}.dataset.data_root={root}'
            for dl in ('train_dataloader', 'val_dataloader',
                       'test_dataloader')
        ]
    if args.batch_size:
        opts.append(f'train_dataloader.batch_size={args.batch_size}')
    if args.num_workers is not None:
        persistent = args.num_workers > 0
        for dl in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
            opts += [
                f'{dl}.num_workers={args.num_workers}',
                f'{dl}.persistent_workers={persistent}'
            ]
    return opts


def _iters_options(iters):
    if not iters:
        return []
    warm = max(1, iters // 10)
    return [
        f'train_cfg.max_iters={iters}',
        f'train_cfg.val_interval={max(1, -(-iters // 4))}',
        f'default_hooks.checkpoint.interval={iters}',
        f'param_scheduler.0.end={warm}',
        f'param_scheduler.1.end={iters}',
    ]


def _train(train_tool, config, work_dir, options):
    argv = [config, '--work-dir', work_dir]
    if options:
        argv += ['--cfg-options'] + options
    runner = train_tool.build_runner(argv)
    t0 = time.time()
    runner.train()
    seconds = time.time() - t0
    ckpt = train_tool.last_checkpoint(work_dir)
    if ckpt is None:
        raise SystemExit(f'error: training wrote no checkpoint in {work_dir}')
    ckpt = _display(ckpt)
    return dict(
        checkpoint=ckpt,
        log_dir=runner.log_dir,
        seconds=round(seconds, 1),
        max_iters=runner.max_iters,
        command='python tools/train.py ' + ' '.join(_quote(a) for a in argv))


def _quote(a):
    return f"'{a}'" if any(c in a for c in ' ()[],') else a


def read_scalars(log_dir):
    """Training and validation scalars MMEngine wrote (vis_data)."""
    path = osp.join(log_dir, 'vis_data', 'scalars.json')
    train, val = [], []
    if osp.isfile(path):
        with open(path) as f:
            for line in f:
                rec = json.loads(line)
                (val if 'mIoU' in rec else train).append(rec)
    return train, val


# ----------------------------------------------------------------------
# outputs
def plot_curves(out_png, student, teacher=None, title=''):
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    s_train, s_val = read_scalars(student['log_dir'])
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2))
    ax = axes[0]
    keys = ['loss', 'decode.loss_ce', 'aux_0.loss_ce', 'siam.loss_sdha_logits',
            'siam.loss_sdha_feat', 'siam.loss_bfa_stage4',
            'siam.loss_bfa_stage3']
    for k in keys:
        pts = [(r['step'], r[k]) for r in s_train if k in r]
        if pts:
            x, y = zip(*pts)
            ax.plot(x, y, label=k, lw=2 if k == 'loss' else 1)
    ax.set_yscale('log')
    ax.set_xlabel('iteration')
    ax.set_title('SCTNet-S training losses')
    ax.grid(alpha=0.3)
    if ax.lines:
        ax.legend(fontsize=7)
    ax = axes[1]
    runs = [('SCTNet-S (student)', s_val)]
    if teacher is not None:
        runs.append(('SegFormer MiT-B0 (teacher)',
                     read_scalars(teacher['log_dir'])[1]))
    for name, val in runs:
        pts = [(r['step'], r['mIoU']) for r in val]
        if pts:
            x, y = zip(*pts)
            ax.plot(x, y, 'o-', label=name)
    ax.set_ylim(0, 100)
    ax.set_xlabel('iteration')
    ax.set_ylabel('val mIoU (%)')
    ax.set_title('validation mIoU')
    ax.grid(alpha=0.3)
    if ax.lines:
        ax.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(out_png, dpi=100)
    plt.close(fig)


def make_grid(pngs, out_png):
    import cv2
    imgs = [cv2.imread(p) for p in pngs]
    imgs = [i for i in imgs if i is not None]
    if not imgs:
        return None
    w = max(i.shape[1] for i in imgs)
    rows = [np.pad(i, ((0, 6), (0, w - i.shape[1]), (0, 0)),
                   constant_values=255) for i in imgs]
    cv2.imwrite(out_png, np.concatenate(rows, axis=0))
    return out_png


def iou_table(per_class) -> str:
    lines = ['| class | IoU (%) | Acc (%) |', '|---|---:|---:|']
    for c, v in per_class.items():

        def fmt(x):
            return 'n/a' if x is None else f'{x:.2f}'

        lines.append(f'| {c} | {fmt(v.get("IoU"))} | {fmt(v.get("Acc"))} |')
    return '\n'.join(lines)


def write_summary(out_dir, s):
    with open(osp.join(out_dir, 'summary.json'), 'w') as f:
        json.dump(s, f, indent=2)
    m = s['test']['metrics']
    mode = 'without SIAM (model.use_siam=False)' if s['no_siam'] else \
        'with SIAM (BFA + SDHA from the SegFormer teacher)'
    md = [
        f'# SCTNet demo: SCTNet-S {mode}', '',
        f'**val mIoU: {m["mIoU"]:.2f}** (aAcc {m["aAcc"]:.2f}, mAcc '
        f'{m["mAcc"]:.2f}) on {s["data"]["n_val"]} validation images, '
        f'{len(s["classes"])} classes.', '',
        f'Total time {s["seconds_total"]:.0f} s on {s["machine"]}.', '',
        '## Per-class IoU', '',
        iou_table(s['test']['per_class']), '', '## Steps', ''
    ]
    d = s['data']
    md.append(f'1. data: `{d["root"]}`, {d["n_train"]} train / {d["n_val"]} '
              f'val images of {d["size"][0]}x{d["size"][1]}, Cityscapes '
              f'layout, seed {d["seed"]} '
              f'({"reused" if d["reused"] else "generated"}, '
              f'{d["seconds"]:.0f} s). Classes: {", ".join(s["classes"])}; '
              'read by MMSegmentation\'s CityscapesDataset with these 8 '
              'classes as metainfo (all other trainIds ignored).')
    if s.get('teacher'):
        t = s['teacher']
        md.append(f'2. teacher: SegFormer MiT-B0, {t["max_iters"]} iterations, '
                  f'val mIoU {t.get("val_mIoU", float("nan")):.2f} '
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
            '', '## With and without SIAM', '',
            '| run | val mIoU |', '|---|---:|',
            f'| this run ({"no SIAM" if s["no_siam"] else "SIAM"}) | '
            f'{m["mIoU"]:.2f} |',
            f'| {o["name"]} (`{o["summary"]}`) | {o["mIoU"]:.2f} |'
        ]
    md += ['', '## Files', '']
    for k, v in s['files'].items():
        md.append(f'- {k}: `{v}`')
    with open(osp.join(out_dir, 'summary.md'), 'w') as f:
        f.write('\n'.join(md) + '\n')


# ----------------------------------------------------------------------
def main(argv=None):
    args = parse_args(argv)
    # configs use paths relative to the repository root; user paths are
    # taken relative to where the demo was started
    args.out_dir = _display(osp.abspath(args.out_dir))
    args.data_root = _display(osp.abspath(args.data_root))
    if args.teacher:
        args.teacher = _display(osp.abspath(args.teacher))
    os.chdir(ROOT)
    if not args.verbose and not isinstance(sys.stdout, _ConsoleFilter):
        sys.stdout = _ConsoleFilter(sys.stdout)
    out = args.out_dir
    os.makedirs(out, exist_ok=True)
    import torch
    machine = (f'{platform.machine()} CPU, {os.cpu_count()} cores, '
               f'{torch.get_num_threads()} torch threads'
               if not torch.cuda.is_available() else
               torch.cuda.get_device_name(0))
    train_tool = _load_tool('train')
    test_tool = _load_tool('test')
    convert_tool = _load_tool('pth_convert')
    from mmseg_sctnet.datasets import CLASSES_STREET

    steps = 4 if args.no_siam or args.teacher else 5
    step = iter(range(1, steps + 1))
    summary = dict(
        no_siam=args.no_siam, machine=machine, classes=list(CLASSES_STREET),
        out_dir=out)

    print(f'[{next(step)}/{steps}] data')
    t0 = time.time()
    summary['data'] = prepare_data(args)
    summary['data']['seconds'] = round(time.time() - t0, 1)
    common = _common_options(args, args.data_root)

    teacher_file = args.teacher
    if args.teacher and not osp.isfile(args.teacher):
        raise SystemExit(f'error: --teacher file not found: {args.teacher}')
    if not args.no_siam and not args.teacher:
        print(f'[{next(step)}/{steps}] teacher: SegFormer MiT-B0 with '
              f'MMSegmentation ({TEACHER_CFG})')
        teacher = _train(train_tool, TEACHER_CFG, osp.join(out, 'teacher'),
                         common + _iters_options(args.teacher_iters))
        val = read_scalars(teacher['log_dir'])[1]
        if val:
            teacher['val_mIoU'] = round(float(val[-1]['mIoU']), 2)
        summary['teacher'] = teacher
        print(f'[{next(step)}/{steps}] convert the teacher '
              '(tools/pth_convert.py)')
        teacher_file = osp.join(out, 'teacher',
                                'segformer_mit-b0_teacher.pth')
        convert_tool.main([teacher['checkpoint'], teacher_file, '--force'])
        summary['convert'] = dict(
            output=teacher_file,
            command=f'python tools/pth_convert.py {teacher["checkpoint"]} '
            f'{teacher_file}')
    summary['teacher_file'] = teacher_file

    s_opts = list(common) + _iters_options(args.student_iters)
    if args.no_siam:
        s_opts.append('model.use_siam=False')
        print(f'[{next(step)}/{steps}] student: SCTNet-S without SIAM '
              f'({STUDENT_CFG}, model.use_siam=False)')
    else:
        s_opts.append(f'model.siam_head.teacher_checkpoint={teacher_file}')
        print(f'[{next(step)}/{steps}] student: SCTNet-S with SIAM from the '
              f'teacher ({STUDENT_CFG})')
    student = _train(train_tool, STUDENT_CFG, osp.join(out, 'student'),
                     s_opts)
    summary['student'] = student

    print(f'[{next(step)}/{steps}] test on the val split (tools/test.py)')
    pred_dir = osp.join(out, 'predictions')
    if osp.isdir(pred_dir):
        shutil.rmtree(pred_dir)  # the demo's own output of a previous run
    metrics_json = osp.join(out, 'test', 'metrics.json')
    t_argv = [
        STUDENT_CFG, student['checkpoint'], '--eval', 'mIoU', '--work-dir',
        osp.join(out, 'test'), '--show-dir', pred_dir, '--metrics-json',
        metrics_json
    ] + (['--cfg-options'] + common if common else [])
    t0 = time.time()
    result = test_tool.main(t_argv)
    summary['test'] = dict(
        metrics=result['metrics'],
        per_class=result['per_class'],
        seconds=round(time.time() - t0, 1),
        command='python tools/test.py ' + ' '.join(
            _quote(a) for a in t_argv))

    # outputs
    curves = osp.join(out, 'curves.png')
    plot_curves(
        curves, student, summary.get('teacher'),
        f'SCTNet-S {"without" if args.no_siam else "with"} SIAM on the demo '
        f'data: val mIoU {result["metrics"]["mIoU"]:.2f}')
    pngs = sorted(
        os.path.join(pred_dir, f) for f in os.listdir(pred_dir)
        if f.endswith('.png'))
    grid = make_grid(pngs[:args.grid], osp.join(out, 'predictions_grid.png'))
    table = osp.join(out, 'miou_table.md')
    with open(table, 'w') as f:
        f.write(iou_table(result['per_class']) + '\n\n'
                f'mIoU {result["metrics"]["mIoU"]:.2f}\n')
    other = osp.join(out, 'no_siam', 'summary.json') if not args.no_siam \
        else osp.join(osp.dirname(osp.abspath(out)), 'summary.json')
    if osp.isfile(other):
        with open(other) as f:
            o = json.load(f)
        if o.get('no_siam') != args.no_siam:
            summary['other_mode'] = dict(
                name='no SIAM' if o['no_siam'] else 'SIAM',
                mIoU=o['test']['metrics']['mIoU'],
                summary=_display(other))
    summary['files'] = dict(
        summary=osp.join(out, 'summary.md'),
        miou_table=table,
        curves=curves,
        predictions=pred_dir + '/ (input | ground truth | prediction)',
        predictions_grid=grid,
        checkpoint=student['checkpoint'],
        metrics=metrics_json)
    if teacher_file:
        summary['files']['teacher'] = teacher_file
    summary['seconds_total'] = round(time.time() - _T0, 1)
    write_summary(out, summary)

    m = result['metrics']
    print('\n' + '=' * 70)
    print(f'SCTNet-S {"without" if args.no_siam else "with"} SIAM: val mIoU '
          f'{m["mIoU"]:.2f} (aAcc {m["aAcc"]:.2f}) in '
          f'{summary["seconds_total"]:.0f} s')
    print(iou_table(result['per_class']))
    if 'other_mode' in summary:
        o = summary['other_mode']
        print(f'{o["name"]} run ({o["summary"]}): val mIoU {o["mIoU"]:.2f}')
    print('Outputs:')
    for k, v in summary['files'].items():
        print(f'  {k:17s} {v}')
    print('=' * 70)
    return summary


if __name__ == '__main__':
    main()
    sys.exit(0)
