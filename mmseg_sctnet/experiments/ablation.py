"""SIAM's effect over seeds: ``tools/demo.py --ablation``.

The student (SCTNet-S, ``configs/demo/sctnet-s_demo_cityscapes.py``) is
trained with SIAM and without it (``model.use_siam=False``) from the same
start, for each seed and each starting point, with the demo's schedule:

* **the same start**: for seed ``s`` both arms get ``randomness.seed=s``,
  and :class:`SameStartHook` re-seeds right before the weights are
  initialised and again right before the first iteration, so that the
  student's initial tensors, the batches and the random stream of the
  first iteration (DropPath) are the same in both arms; the SIAM head
  (teacher, projections) is built and initialised after the student's
  modules and does not shift them. The hook records a digest of the
  initial student tensors, of the first batch and the iteration-1 CE
  losses of every run, and :func:`run_ablation` stops when the two arms
  of a seed disagree.
* **starting points**: ``'pretrained'`` -- the backbone pretrained on
  generated classification data with the MMPretrain recipe
  (``configs/pretrain/sctnet-s_generated-8cls.py``, exported with
  :func:`mmseg_sctnet.pretrain.export_backbone`), the paper's setting;
  ``'scratch'`` -- no pretraining (the demo's setting).
* **the teacher** is trained once (the demo's, reused when the demo trained
  it on the same data with the same command, else trained here) and
  frozen in every SIAM run.

Outputs (``out_dir``): ``ablation.json`` (top-level ``siam`` and
``no_siam``: the val mIoU of each seed, in seed order, of the main
starting point -- the pretrained one when it ran; ``starts`` holds both),
``ablation.md`` (mean +- std, paired differences), ``ablation.png`` (every
seed a point) and ``loss_balance.png`` (CE against each alignment term
over training, from MMEngine's scalars). A re-run reuses the data, the
teacher, the pretrained backbone and every finished run whose settings
(command, teacher and backbone files) are unchanged.
"""
import json
import os
import os.path as osp
import shutil
import statistics
import time
from typing import Dict, List, Optional, Sequence

from ..datasets import make_imagenet_layout
from ..engine.same_start_hook import SameStartHook, is_ce_term
from ..io.checksum import file_sha256
from ..io.config import load_config
from ..io.errors import ConfigError, PathError
from ..pretrain import export_backbone
from ..visualization.pyplot import pyplot
from .demo import (DEFAULT_DATA_ROOT, STUDENT_CFG, TEACHER_CFG, _command,
                   _display, _machine, convert, data_options, iters_options,
                   prepare_data, read_scalars, train_run, train_student)

__all__ = [
    'STARTS', 'ARMS', 'PRETRAIN_CFG', 'prepare_pretraining',
    'pretrain_backbone', 'find_teacher', 'get_teacher', 'teacher_file_name',
    'train_arm', 'summarize', 'seed_table', 'seed_row',
    'loss_balance', 'plot_ablation', 'plot_loss_balance', 'write_table',
    'check_same_start',
    'run_ablation'
]

STARTS = ('pretrained', 'scratch')
ARMS = ('siam', 'no_siam')
PRETRAIN_CFG = 'configs/pretrain/sctnet-s_generated-8cls.py'
DEFAULT_IMAGENET_ROOT = 'data/demo_imagenet'
#: the generated classification data of docs/pretrain.md's quick run
IMAGENET_SPEC = dict(n_classes=8, n_per_class=100, size=64,
                     n_val_per_class=25, seed=0)
STAMP = '.sctnet_demo.json'
SIAM_TERMS = ('siam.loss_sdha_logits', 'siam.loss_sdha_feat',
              'siam.loss_bfa_stage4', 'siam.loss_bfa_stage3')


# ----------------------------------------------------------------------
# the pretraining stage
def _stamped(root: str, spec: dict) -> bool:
    """True when ``root`` holds the demo's data written with ``spec``;
    refuses a folder the demo did not write."""
    stamp = osp.join(root, STAMP)
    if osp.isfile(stamp):
        with open(stamp) as f:
            return json.load(f) == spec
    if osp.exists(root) and os.listdir(root):
        raise PathError(f'{root} exists and was not written by the demo (no '
                        f'{STAMP}); pass another folder or remove it.')
    return False


def prepare_pretraining(root: str = DEFAULT_IMAGENET_ROOT,
                        spec: Optional[dict] = None) -> dict:
    """The generated classification data (ImageNet layout; by default
    :data:`IMAGENET_SPEC`, 8 classes of 64x64 objects, docs/pretrain.md) in
    ``root``; reused when it matches."""
    gen = dict(IMAGENET_SPEC, **(spec or {}))
    spec = dict(layout='imagenet', **gen)
    t0 = time.time()
    if _stamped(root, spec):
        print(f'  reusing {root}')
        return dict(spec, root=root, reused=True, seconds=0.0)
    if osp.exists(root):
        shutil.rmtree(root)  # the demo's own data, other settings
    tmp = root.rstrip('/') + '.tmp'
    if osp.exists(tmp):
        shutil.rmtree(tmp)
    make_imagenet_layout(tmp, **gen)
    with open(osp.join(tmp, STAMP), 'w') as f:
        json.dump(spec, f)
    os.replace(tmp, root)
    print(f'  wrote {root}: {gen["n_classes"]} classes x '
          f'{gen["n_per_class"]} train / {gen["n_val_per_class"]} val images')
    return dict(spec, root=root, reused=False,
                seconds=round(time.time() - t0, 1))


def _pretrain_options(data_root: str, epochs: Optional[int],
                      num_workers: Optional[int]) -> List[str]:
    opts = [f'{dl}.dataset.data_root={data_root}'
            for dl in ('train_dataloader', 'val_dataloader',
                       'test_dataloader')]
    if epochs:
        opts.append(f'train_cfg.max_epochs={epochs}')
    if num_workers is not None:
        for dl in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
            opts.append(f'{dl}.num_workers={num_workers}')
    return opts


def pretrain_backbone(out_dir: str, data: dict, epochs: Optional[int] = None,
                      num_workers: Optional[int] = None,
                      quiet: bool = True) -> dict:
    """Pretrain SCTNet-S on the generated classification data with
    :data:`PRETRAIN_CFG` (MMPretrain, ``tools/train.py``) into
    ``out_dir/pretrain`` and export its backbone (EMA weights,
    ``tools/export_backbone.py``, checked against the demo student) to
    ``out_dir/pretrain/sct-s_generated.pth``. Reused when that file was
    written by the same command."""
    work = osp.join(out_dir, 'pretrain')
    dst = osp.join(work, 'sct-s_generated.pth')
    opts = _pretrain_options(data['root'], epochs, num_workers)
    command = _command('tools/train.py',
                       [PRETRAIN_CFG, '--work-dir', work, '--cfg-options',
                        *opts])
    record = osp.join(work, 'pretrain.json')
    if osp.isfile(record) and osp.isfile(dst):
        with open(record) as f:
            old = json.load(f)
        if (old.get('command') == command and old.get('data') == _spec(data)
                and old.get('sha256') == file_sha256(dst)):
            print(f'  reusing {dst} (pretrained by the same command: top-1 '
                  f'{old.get("val_top1")})')
            return dict(old, reused=True)
    run = train_run(PRETRAIN_CFG, work, opts, quiet)
    # records without 'mIoU' (classification val too) are in read_scalars' first list
    top1 = [r['accuracy/top1'] for r in read_scalars(run['log_dir'])[0]
            if 'accuracy/top1' in r]
    exp = export_backbone(run['checkpoint'], dst, config=STUDENT_CFG,
                          force=True)
    out = dict(
        config=PRETRAIN_CFG, command=command, data=_spec(data),
        checkpoint=run['checkpoint'], output=dst,
        sha256=file_sha256(dst), weights=exp['weights'],
        num_tensors=exp['num_tensors'],
        epochs=epochs or load_config(PRETRAIN_CFG).train_cfg.max_epochs,
        iterations=run['max_iters'], seconds=run['seconds'],
        val_top1=round(float(top1[-1]), 2) if top1 else None,
        val_top1_curve=[round(float(t), 2) for t in top1],
        export_command=_command('tools/export_backbone.py',
                                [run['checkpoint'], dst]))
    with open(record, 'w') as f:
        json.dump(out, f, indent=2)
    print(f'  pretrained backbone: {dst} ({exp["num_tensors"]} tensors, '
          f'{exp["weights"]} weights, val top-1 {out["val_top1"]} on '
          f'{data["n_classes"]} classes, {run["seconds"]:.0f} s)')
    return dict(out, reused=False)


def _spec(data: dict) -> dict:
    return {k: v for k, v in data.items()
            if k not in ('root', 'reused', 'seconds')}


# ----------------------------------------------------------------------
# the teacher
def find_teacher(out_dir: str, data: dict, options: Sequence[str],
                 iters: Optional[int], demo_dirs: Sequence[str],
                 config: str = TEACHER_CFG) -> Optional[dict]:
    """A converted teacher trained on ``data`` by exactly the command this
    ablation would run (same config and options): the demo's
    (``<demo_dir>/summary.json``) or this ablation's own earlier one."""
    opts = list(options) + iters_options(iters)
    spec = _spec(data)
    candidates = [(osp.join(d, 'summary.json'), d) for d in demo_dirs]
    candidates.append((osp.join(out_dir, 'teacher', 'teacher.json'),
                       out_dir))
    for path, run_dir in candidates:
        if not osp.isfile(path):
            continue
        with open(path) as f:
            s = json.load(f)
        t = s.get('teacher') or {}
        want = _command('tools/train.py', [
            config, '--work-dir', osp.join(run_dir, 'teacher'),
            *(['--cfg-options', *opts] if opts else [])
        ])
        file = s.get('teacher_file')
        if (t.get('command') == want and _spec(s.get('data', {})) == spec
                and s['data'].get('root') == data['root'] and file
                and osp.isfile(file)):
            return dict(t, file=file, reused_from=_display(path))
    return None


def teacher_file_name(config: str = TEACHER_CFG) -> str:
    """The converted teacher's file name: the demo's for its SegFormer,
    ``<config stem>_teacher.pth`` for another teacher config."""
    if config == TEACHER_CFG:
        return 'segformer_mit-b0_teacher.pth'
    return osp.splitext(osp.basename(config))[0] + '_teacher.pth'


def get_teacher(out_dir: str, data: dict, options: Sequence[str],
                iters: Optional[int], demo_dirs: Sequence[str],
                given: Optional[str], quiet: bool,
                config: str = TEACHER_CFG) -> dict:
    """The frozen teacher of every SIAM run: ``given``, a reusable one
    (:func:`find_teacher`) or one trained now from ``config`` (any
    MMSegmentation segmentor whose head has a SIAM split, docs/siam.md)
    into ``out_dir/teacher``."""
    if given:
        if not osp.isfile(given):
            raise PathError(f'--teacher file not found: {given}')
        print(f'  using the given teacher {given}')
        return dict(file=given, reused_from='--teacher')
    found = find_teacher(out_dir, data, options, iters, demo_dirs, config)
    if found:
        print(f'  reusing the teacher {found["file"]} (val mIoU '
              f'{found.get("val_mIoU")}; trained by the same command on the '
              f'same data, {found["reused_from"]})')
        return found
    print(f'  training the teacher with MMSegmentation ({config})')
    t = train_run(config, osp.join(out_dir, 'teacher'),
                  list(options) + iters_options(iters), quiet)
    file = osp.join(out_dir, 'teacher', teacher_file_name(config))
    conv = convert(t['checkpoint'], file)
    with open(osp.join(out_dir, 'teacher', 'teacher.json'), 'w') as f:
        json.dump(dict(teacher=t, teacher_file=file, convert=conv,
                       data=data), f, indent=2)
    return dict(t, file=file, reused_from=None, convert=conv)


# ----------------------------------------------------------------------
# the runs
def train_arm(out_dir: str, start: str, seed: int, arm: str,
              options: Sequence[str], teacher_file: Optional[str],
              iters: Optional[int], key: dict, quiet: bool = True,
              reuse_dirs: Sequence[str] = (),
              config: str = STUDENT_CFG, amp: bool = False) -> dict:
    """One student run (``out_dir/<start>/seed<seed>/<arm>``), or its
    recorded result when the same run finished before (same ``key``) here
    or in one of ``reuse_dirs``. ``arm``: ``'no_siam'``, or a SIAM arm
    (any other name: SIAM from ``teacher_file``). ``amp``: ``--amp``."""
    work_name = osp.join(start, f'seed{seed}', arm)
    record = osp.join(out_dir, work_name, 'result.json')
    for folder in (out_dir, *reuse_dirs):
        found = osp.join(folder, work_name, 'result.json')
        if not osp.isfile(found):
            continue
        with open(found) as f:
            old = json.load(f)
        if old.get('key') == key:
            print(f'  reusing {_display(found)}: val mIoU {old["mIoU"]}')
            return dict(old, reused=True, reused_from=_display(found))
    hook = SameStartHook(seed)
    run = train_student(out_dir, list(options) +
                        ['val_evaluator.type=PerClassIoUMetric'],
                        teacher_file if arm != 'no_siam' else None, iters,
                        seed, work_name, quiet, hooks=[hook], config=config,
                        amp=amp)
    train, val = read_scalars(run['log_dir'])
    out = dict(
        key=key, start=start, seed=seed, arm=arm, mIoU=run.get('val_mIoU'),
        per_class=run.get('per_class'),
        val_curve=[(r['step'], round(float(r['mIoU']), 2)) for r in val],
        seconds=run['seconds'], max_iters=run['max_iters'], amp=amp,
        command=run['command'], log_dir=_display(run['log_dir']),
        checkpoint=run['checkpoint'], losses=loss_balance(train), **hook.record)
    with open(record, 'w') as f:
        json.dump(out, f, indent=2)
    return dict(out, reused=False)


def loss_balance(train: List[dict]) -> dict:
    """The logged CE and alignment terms (weighted, as optimised) over
    training: every logged step, and the ratio of the alignment sum to the
    CE sum at the first, middle and last logged step. CE terms: every loss
    of the student's own heads (:func:`~mmseg_sctnet.engine.
    same_start_hook.is_ce_term`; ``decode.loss_ce`` and ``aux_0.loss_ce``
    for SCTNet)."""
    steps = [r for r in train if any(is_ce_term(k) for k in r)]
    terms = sorted(k for k in (steps[0] if steps else {})
                   if is_ce_term(k) or k in SIAM_TERMS)
    curve = {k: [(r['step'], float(r[k])) for r in steps if k in r]
             for k in terms}
    out = dict(curve=curve)
    if steps and any(k in steps[0] for k in SIAM_TERMS):
        picks = dict(first=steps[0], middle=steps[len(steps) // 2],
                     last=steps[-1])
        out['ratio_align_to_ce'] = {
            name: dict(step=r['step'],
                       ratio=round(sum(r[k] for k in SIAM_TERMS if k in r) /
                                   sum(r[k] for k in r if is_ce_term(k)), 2))
            for name, r in picks.items()
        }
    return out


def summarize(values: Sequence[float]) -> dict:
    """Mean and sample standard deviation (n - 1; 0 for one value)."""
    vals = [float(v) for v in values]
    return dict(
        n=len(vals), mean=round(statistics.fmean(vals), 2) if vals else None,
        std=round(statistics.stdev(vals), 2) if len(vals) > 1 else 0.0)


# ----------------------------------------------------------------------
# outputs
def seed_table(head: Sequence[str], seeds: Sequence[int],
               tail: Sequence[str]) -> List[str]:
    """Header and rule of a markdown table with a column per seed: the
    ``head`` columns (left-aligned), ``seed 0 .. seed n``, then ``tail``
    (numbers, right-aligned like the seeds)."""
    cells = [*head, *(f'seed {s}' for s in seeds), *tail]
    return ['| ' + ' | '.join(cells) + ' |',
            '|' + '---|' * len(head) + '---:|' * (len(cells) - len(head))]


def seed_row(head: Sequence[str], values: Sequence[float],
             tail: Sequence[str], fmt: str = '.2f') -> str:
    """One row of :func:`seed_table`: ``values`` (one per seed) formatted
    with ``fmt`` between the ``head`` and ``tail`` cells."""
    cells = [*head, *(format(v, fmt) for v in values), *tail]
    return '| ' + ' | '.join(map(str, cells)) + ' |'


def write_table(out_png: str, res: dict) -> str:
    """``ablation.md``: per start, the val mIoU of every seed in both arms,
    mean +- std, and the paired difference SIAM - no SIAM."""
    seeds = res['seeds']
    student = osp.splitext(osp.basename(res.get('student_config',
                                                 STUDENT_CFG)))[0]
    lines = [f'# SIAM ablation: {student} on the demo data '
             f'({res["scenes"]} scenes)', '',
             f'val mIoU (%) on {res["data"]["n_val"]} validation images, '
             f'{res["schedule"]["student_iters"]} student iterations, '
             f'batch {res["schedule"]["batch_size"]}; teacher '
             f'`{res["teacher"]["file"]}` (val mIoU '
             f'{res["teacher"].get("val_mIoU")}). Top-level `siam`/`no_siam` '
             f'of ablation.json: the {res["main_start"]} start.', '',
             *seed_table(('start', 'arm'), seeds, ('mean +- std', ))]
    for start, r in res['starts'].items():
        for arm, name in (('siam', 'SIAM'), ('no_siam', 'no SIAM')):
            st = r['summary'][arm]
            lines.append(seed_row(
                (start, name), r[arm],
                (f'**{st["mean"]:.2f} +- {st["std"]:.2f}**', )))
        d = r['summary']['difference']
        lines.append(seed_row(
            (start, 'SIAM - no SIAM'), r['difference'],
            (f'**{d["mean"]:+.2f} +- {d["std"]:.2f}**', ), fmt='+.2f'))
    lines += ['', 'std: sample standard deviation over seeds (n - 1). Each '
              'seed: the same initial student tensors, batches and first '
              'random draws in both arms (digests in ablation.json).']
    if res.get('pretrain', {}).get('given'):
        lines.append(f'Pretrained start: the given backbone '
                     f'`{res["pretrain"]["output"]}`.')
    elif res.get('pretrain'):
        p = res['pretrain']
        lines.append(f'Pretrained start: `{p["output"]}` ({p["config"]}, '
                     f'{p.get("epochs")} epochs, val top-1 '
                     f'{p.get("val_top1")}% on 8 generated classes).')
    path = osp.join(osp.dirname(out_png), 'ablation.md')
    with open(path, 'w') as f:
        f.write('\n'.join(lines) + '\n')
    return path


def plot_ablation(out_png: str, res: dict) -> str:
    """Every seed a point, the two arms side by side (a line joins the two
    runs of one seed), one panel per start; mean +- std as error bars."""
    plt = pyplot()
    starts = list(res['starts'])
    fig, axes = plt.subplots(1, len(starts),
                             figsize=(max(4.2 * len(starts), 6.4), 4.4),
                             sharey=True, squeeze=False)
    cmap = plt.get_cmap('tab10')
    for ax, start in zip(axes[0], starts):
        r = res['starts'][start]
        for i, seed in enumerate(res['seeds']):
            ys = [r['siam'][i], r['no_siam'][i]]
            ax.plot([0, 1], ys, '-', color=cmap(i % 10), alpha=0.4)
            ax.plot([0, 1], ys, 'o', color=cmap(i % 10), label=f'seed {seed}')
        for x, arm in enumerate(ARMS):
            st = r['summary'][arm]
            ax.errorbar(x + 0.12, st['mean'], yerr=st['std'], fmt='s',
                        color='k', capsize=4)
        d = r['summary']['difference']
        ax.set_xticks([0, 1], ['SIAM', 'no SIAM'])
        ax.set_xlim(-0.4, 1.4)
        ax.set_title(f'{start} start: SIAM - no SIAM = {d["mean"]:+.2f} '
                     f'+- {d["std"]:.2f}', fontsize=9)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel('val mIoU (%)')
    axes[0][0].legend(fontsize=7)
    student = osp.splitext(osp.basename(res.get('student_config',
                                                 STUDENT_CFG)))[0]
    fig.suptitle(f'{student} with and without SIAM\n{len(res["seeds"])} '
                 f'seeds, {res["scenes"]} scenes, '
                 f'{res["schedule"]["student_iters"]} iterations; black: '
                 'mean +- std', fontsize=9)
    fig.tight_layout()
    fig.savefig(out_png, dpi=100)
    plt.close(fig)
    return out_png


def plot_loss_balance(out_png: str, res: dict) -> str:
    """Per start: the SIAM arm's CE terms and each alignment term (weighted,
    as optimised; mean over seeds) and the no-SIAM arm's CE, over the
    iterations (log scale)."""
    plt = pyplot()
    starts = list(res['starts'])
    fig, axes = plt.subplots(1, len(starts), figsize=(6 * len(starts), 4.2),
                             sharey=True, squeeze=False)
    for ax, start in zip(axes[0], starts):
        runs = res['starts'][start]['runs']
        for arm, style in (('siam', '-'), ('no_siam', ':')):
            curves = [r['losses']['curve'] for r in runs if r['arm'] == arm]
            if not curves:
                continue
            keys = sorted(set().union(*curves))
            for k in keys:
                if k in SIAM_TERMS and arm != 'siam':
                    continue
                if not all(k in c and c[k] for c in curves):
                    continue
                steps = [s for s, _ in curves[0][k]]
                mean = [statistics.fmean(c[k][i][1] for c in curves)
                        for i in range(len(steps))]
                ax.plot(steps, mean, style, lw=2 if 'loss_ce' in k else 1,
                        label=f'{k} ({"SIAM" if arm == "siam" else "no SIAM"})')
        ax.set(yscale='log', xlabel='iteration',
               title=f'{start} start: loss terms (mean over seeds)')
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(out_png, dpi=100)
    plt.close(fig)
    return out_png


# ----------------------------------------------------------------------
def run_ablation(out_dir: str,
                 data_root: str = DEFAULT_DATA_ROOT,
                 seeds: int = 3,
                 starts: Sequence[str] = STARTS,
                 scenes: str = 'street',
                 n_train: int = 320,
                 n_val: int = 80,
                 size: Sequence[int] = (128, 256),
                 teacher_iters: Optional[int] = None,
                 student_iters: Optional[int] = None,
                 batch_size: Optional[int] = None,
                 teacher: Optional[str] = None,
                 num_workers: Optional[int] = None,
                 data_seed: int = 0,
                 pretrain_epochs: Optional[int] = None,
                 imagenet_root: str = DEFAULT_IMAGENET_ROOT,
                 imagenet_spec: Optional[dict] = None,
                 backbone: Optional[str] = None,
                 demo_dirs: Sequence[str] = ('demo_output', ),
                 verbose: bool = False,
                 student_config: str = STUDENT_CFG,
                 teacher_config: str = TEACHER_CFG) -> dict:
    """The whole ablation into ``out_dir`` (paths relative to the
    repository root). Returns what ``ablation.json`` holds.

    ``student_config``/``teacher_config``: another student (any config
    with an ``EncoderDecoderDistill`` model, e.g. DDRNet-23-slim of
    configs/siam) or teacher (any MMSegmentation segmentor whose head has a
    SIAM split); the pretrained start needs an SCTNet backbone (the
    pretraining recipe exports one).
    """
    t_start = time.time()
    quiet = not verbose
    if seeds < 1:
        raise ConfigError('--seeds must be at least 1')
    if backbone and not osp.isfile(backbone):
        raise PathError(f'--backbone file not found: {backbone} (an export '
                        'of tools/export_backbone.py)')
    if pretrain_epochs is not None and pretrain_epochs < 2:
        raise ConfigError('--pretrain-epochs must be at least 2 (the '
                          'pretraining schedule warms up for one epoch)')
    starts = [s for s in STARTS if s in starts]
    if not starts:
        raise ConfigError(f'--start must name one of {STARTS}')
    common = data_options(data_root, batch_size, num_workers, size)
    student_cfg = load_config(student_config)
    load_config(teacher_config)
    if 'pretrained' in starts and student_cfg.model.backbone.get(
            'type') != 'SCTNet':
        raise ConfigError(
            f'--start pretrained: the student of {student_config} has a '
            f'{student_cfg.model.backbone.get("type")} backbone; the '
            'pretrained start exists for SCTNet (configs/pretrain/ exports '
            'an SCTNet backbone): pass --start scratch')
    os.makedirs(out_dir, exist_ok=True)
    steps = 3 + ('pretrained' in starts)
    step = iter(range(1, steps + 1))
    res = dict(scenes=scenes, seeds=list(range(seeds)), machine=_machine(),
               out_dir=out_dir, seconds={}, student_config=student_config,
               teacher_config=teacher_config)

    print(f'[{next(step)}/{steps}] data ({scenes} scenes)')
    data = prepare_data(data_root, n_train, n_val, size, data_seed, scenes)
    res['data'] = data
    res['seconds']['data'] = data['seconds']
    res['schedule'] = dict(
        student_iters=student_iters or student_cfg.train_cfg.max_iters,
        batch_size=batch_size or student_cfg.train_dataloader.batch_size,
        teacher_iters=teacher_iters)
    # the loss balance needs logged steps: at least ten per student run
    log_every = student_cfg.default_hooks.logger.interval
    iters_ = res['schedule']['student_iters']
    if iters_ // log_every < 10:
        log_every = max(1, iters_ // 10)
    res['schedule']['log_interval'] = log_every

    print(f'[{next(step)}/{steps}] teacher')
    t0 = time.time()
    res['teacher'] = get_teacher(out_dir, data, common, teacher_iters,
                                 demo_dirs, teacher, quiet, teacher_config)
    res['seconds']['teacher'] = round(time.time() - t0, 1)
    teacher_file = res['teacher']['file']

    start_opts = dict(scratch=[])
    if 'pretrained' in starts and backbone:
        print(f'[{next(step)}/{steps}] the given pretrained backbone '
              f'{backbone}')
        res['pretrain'] = dict(output=backbone, given=True,
                               sha256=file_sha256(backbone))
    elif 'pretrained' in starts:
        print(f'[{next(step)}/{steps}] pretraining the backbone on generated '
              f'classification data ({PRETRAIN_CFG})')
        t0 = time.time()
        cls_data = prepare_pretraining(imagenet_root, imagenet_spec)
        res['pretrain'] = pretrain_backbone(out_dir, cls_data,
                                            pretrain_epochs, num_workers,
                                            quiet)
        res['pretrain']['data_seconds'] = cls_data['seconds']
        res['seconds']['pretrain'] = round(time.time() - t0, 1)
    if 'pretrained' in starts:
        start_opts['pretrained'] = [
            'model.backbone.init_cfg._delete_=True',
            'model.backbone.init_cfg.type=Pretrained',
            f'model.backbone.init_cfg.checkpoint={res["pretrain"]["output"]}',
        ]

    n_runs = len(starts) * seeds * len(ARMS)
    print(f'[{next(step)}/{steps}] {n_runs} student runs: '
          f'{", ".join(starts)} start x {seeds} seeds x (SIAM, no SIAM)')
    t0 = time.time()
    res['starts'] = {}
    done = 0
    for start in starts:
        key_base = dict(
            teacher_sha256=file_sha256(teacher_file),
            backbone_sha256=res['pretrain']['sha256']
            if start == 'pretrained' else None)
        opts = common + start_opts[start] + [
            f'default_hooks.logger.interval={log_every}']
        runs = []
        for seed in res['seeds']:
            pair = {}
            for arm in ARMS:
                done += 1
                print(f'  run {done}/{n_runs}: {start} start, seed {seed}, '
                      f'{"SIAM" if arm == "siam" else "no SIAM"}')
                key = dict(key_base, options=opts, iters=student_iters,
                           seed=seed, arm=arm)
                if student_config != STUDENT_CFG:  # (demo runs keep keys)
                    key['config'] = student_config
                r = train_arm(out_dir, start, seed, arm, opts, teacher_file,
                              student_iters, key, quiet,
                              config=student_config)
                print(f'    val mIoU {r["mIoU"]:.2f} ({r["seconds"]:.0f} s)')
                pair[arm] = r
                runs.append(r)
            check_same_start(pair, start, seed)
        r = {arm: [x['mIoU'] for x in runs if x['arm'] == arm]
             for arm in ARMS}
        r['difference'] = [round(a - b, 2)
                           for a, b in zip(r['siam'], r['no_siam'])]
        r['summary'] = {k: summarize(r[k])
                        for k in ('siam', 'no_siam', 'difference')}
        r['siam_wins'] = sum(d > 0 for d in r['difference'])
        r['runs'] = runs
        res['starts'][start] = r
    res['seconds']['students'] = round(time.time() - t0, 1)

    main = 'pretrained' if 'pretrained' in starts else starts[0]
    res['main_start'] = main
    res['siam'] = res['starts'][main]['siam']
    res['no_siam'] = res['starts'][main]['no_siam']
    png = plot_ablation(osp.join(out_dir, 'ablation.png'), res)
    res['files'] = dict(
        json=osp.join(out_dir, 'ablation.json'),
        table=write_table(png, res), plot=png,
        loss_balance=plot_loss_balance(
            osp.join(out_dir, 'loss_balance.png'), res))
    res['seconds']['total'] = round(time.time() - t_start, 1)
    # top-level keys first: siam, no_siam
    ordered = dict(siam=res.pop('siam'), no_siam=res.pop('no_siam'), **res)
    with open(ordered['files']['json'], 'w') as f:
        json.dump(ordered, f, indent=2)

    print('\n' + '=' * 70)
    with open(ordered['files']['table']) as f:
        print(f.read())
    print('Outputs:')
    for k, v in ordered['files'].items():
        print(f'  {k:13s} {v}')
    print(f'Total {ordered["seconds"]["total"]:.0f} s '
          f'({", ".join(f"{k} {v:.0f} s" for k, v in res["seconds"].items())})')
    print('=' * 70)
    return ordered


def check_same_start(pair: Dict[str, dict], start: str, seed: int) -> None:
    """Both arms of a seed must have started from the same tensors and
    batch and computed the same CE losses in their first iteration (the
    arms differ from the first update on); an error otherwise: the
    comparison would not be paired."""
    a, b = pair['siam'], pair['no_siam']
    for k in ('init_sha256', 'batch_sha256', 'iter1_ce'):
        if a.get(k) != b.get(k):
            raise RuntimeError(
                f'{start} start, seed {seed}: the SIAM and no-SIAM runs did '
                f'not start alike ({k}: {a.get(k)} vs {b.get(k)})')
