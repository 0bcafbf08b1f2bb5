"""SIAM studies built on the ablation (``tools/siam_study.py``).

* :func:`prereg_report`: the report of the pre-registered experiment
  (docs/siam.md): for each student length, every seed's SIAM and no-SIAM
  val mIoU, the paired difference with its mean, sample standard deviation
  and 95 % t-interval, the reading the rule gives, person and car IoU of
  each arm, and the ratio of the summed alignment terms to the summed CE
  terms at every logged iteration (mean over seeds). It reads the
  ``ablation.json`` of the runs (``tools/demo.py --ablation``) and changes
  nothing in them.
* :func:`run_sensitivity`: the declared loss-balance sensitivity study: the
  four alignment weights scaled together (1, 0.1, 0.01 by default) on the
  street and the context scenes, each scale and a no-SIAM run from the same
  start for every seed (:class:`~mmseg_sctnet.engine.SameStartHook`). A
  run finished before with exactly the same settings (here or in a
  ``reuse`` folder, e.g. the pre-registered runs) is reused, not trained
  again.

Every value goes to JSON; tables to Markdown; charts to PNG.
"""
import json
import math
import os
import os.path as osp
import statistics
import time
from typing import Callable, Dict, List, Optional, Sequence

from ..engine.same_start_hook import is_ce_term
from ..io.checksum import file_sha256
from ..io.config import load_config
from ..io.errors import ConfigError, PathError
from ..io.files import write_json
from ..visualization.pyplot import pyplot
from .ablation import (SIAM_TERMS, check_same_start, get_teacher, seed_row,
                       seed_table, summarize, train_arm)
from .demo import STUDENT_CFG, _display, _machine, data_options, prepare_data

__all__ = [
    'official_weights', 'weight_options', 't_interval', 'align_ce_ratio',
    'prereg_report', 'run_sensitivity', 'SCENE_DATA', 'SCALES'
]

#: the scales of the declared sensitivity study
SCALES = (1.0, 0.1, 0.01)
#: where each scene's generated data lives (what tools/demo.py writes)
SCENE_DATA = dict(street='data/demo_cityscapes', context='data/demo_context')
#: the classes the context scenes tell apart by the sky alone
CONTEXT_CLASSES = ('person', 'car')


def official_weights() -> List[float]:
    """The four alignment weights of the demo student config (the
    official 3, 15, 15, 15)."""
    cfg = load_config(STUDENT_CFG)
    return [float(w) for w in cfg.model.siam_head.loss_decode.loss_weight]


def weight_options(scale: float) -> List[str]:
    """``--cfg-options`` scaling the four alignment weights together (none
    for scale 1: the run is then the plain SIAM run)."""
    if scale == 1:
        return []
    w = ','.join(f'{scale * v:g}' for v in official_weights())
    return [f'model.siam_head.loss_decode.loss_weight=[{w}]']


def arm_name(scale: float) -> str:
    return 'siam' if scale == 1 else f'siam_x{scale:g}'


def t_interval(values: Sequence[float], level: float = 0.95) -> dict:
    """Mean, sample standard deviation and the two-sided t-interval of the
    mean (``n - 1`` degrees of freedom)."""
    from scipy import stats  # a requirement of the package, heavy to load
    vals = [float(v) for v in values]
    n = len(vals)
    mean = statistics.fmean(vals)
    if n < 2:
        return dict(n=n, mean=mean, std=0.0, t=None, low=None, high=None)
    sd = statistics.stdev(vals)
    t = float(stats.t.ppf((1 + level) / 2, n - 1))
    half = t * sd / math.sqrt(n)
    return dict(n=n, mean=mean, std=sd, t=t, low=mean - half,
                high=mean + half, level=level)


def reading(ci: dict) -> str:
    """The pre-registered reading rule: helps if the interval lies above
    0, hurts if below, otherwise not established."""
    if ci.get('low') is None:
        return 'not established (one seed)'
    if ci['low'] > 0:
        return 'SIAM helps'
    if ci['high'] < 0:
        return 'SIAM hurts'
    return 'not established'


def align_ce_ratio(curve: Dict[str, list]) -> List[tuple]:
    """``[(step, sum of alignment terms / sum of CE terms)]`` at every
    logged step of one run's loss curve."""
    ce_keys = [k for k in curve if is_ce_term(k)]
    al_keys = [k for k in curve if k in SIAM_TERMS]
    if not ce_keys or not al_keys:
        return []
    values = {k: dict(curve[k]) for k in ce_keys + al_keys}
    out = []
    for step, _ in curve[ce_keys[0]]:
        if not all(step in values[k] for k in ce_keys + al_keys):
            continue
        ce = sum(values[k][step] for k in ce_keys)
        if ce > 0:
            out.append((step, sum(values[k][step] for k in al_keys) / ce))
    return out


def _mean_curve(curves: List[List[tuple]]) -> List[tuple]:
    if not curves:
        return []
    n = min(len(c) for c in curves)
    return [(curves[0][i][0],
             statistics.fmean(c[i][1] for c in curves)) for i in range(n)]


def _iou(run: dict, cls: str) -> Optional[float]:
    per = run.get('per_class') or {}
    v = per.get(cls)
    if isinstance(v, dict):
        v = v.get('IoU')
    return None if v is None else float(v)


def _read_ablation(folder: str) -> dict:
    path = osp.join(folder, 'ablation.json')
    if not osp.isfile(path):
        raise PathError(f'{path} not found: pass the --out-dir of a '
                        'finished tools/demo.py --ablation run')
    with open(path) as f:
        return json.load(f)


def prereg_report(runs: Dict[int, str], out_dir: str,
                  start: str = 'pretrained') -> dict:
    """The report of the pre-registered experiment from finished ablations.

    Args:
        runs: student length (iterations) -> the ``--out-dir`` of its
            ``tools/demo.py --ablation`` run.
        out_dir: where ``prereg.json``, ``prereg.md`` and ``prereg.png``
            go (the ablation folders are only read).
    """
    res = dict(lengths={}, machine=_machine(), sources=dict(runs))
    for length, folder in sorted(runs.items()):
        abl = _read_ablation(folder)
        if start not in abl.get('starts', {}):
            raise ConfigError(f'{folder}/ablation.json has no {start!r} '
                              'start')
        r = abl['starts'][start]
        if abl['schedule']['student_iters'] != length:
            raise ConfigError(
                f'{folder} trained {abl["schedule"]["student_iters"]} '
                f'iterations, not {length}')
        runs_ = r['runs']
        by_arm = {a: sorted((x for x in runs_ if x['arm'] == a),
                            key=lambda x: x['seed'])
                  for a in ('siam', 'no_siam')}
        diffs = [round(a['mIoU'] - b['mIoU'], 2)
                 for a, b in zip(by_arm['siam'], by_arm['no_siam'])]
        ci = t_interval(diffs)
        classes = {
            arm: {c: statistics.fmean(_iou(x, c) for x in xs)
                  for c in CONTEXT_CLASSES}
            for arm, xs in by_arm.items()
        }
        per_seed_classes = {
            arm: [{c: _iou(x, c) for c in CONTEXT_CLASSES} for x in xs]
            for arm, xs in by_arm.items()
        }
        ratio = _mean_curve([align_ce_ratio(x['losses']['curve'])
                             for x in by_arm['siam']])
        res['lengths'][length] = dict(
            folder=folder, seeds=[x['seed'] for x in by_arm['siam']],
            siam=[x['mIoU'] for x in by_arm['siam']],
            no_siam=[x['mIoU'] for x in by_arm['no_siam']],
            difference=diffs, interval=ci, reading=reading(ci),
            class_iou_mean=classes, class_iou=per_seed_classes,
            ratio_align_to_ce=[(s, round(v, 2)) for s, v in ratio],
            teacher=abl['teacher'].get('val_mIoU'),
            teacher_file=abl['teacher'].get('file'),
            teacher_per_class=abl['teacher'].get('per_class'),
            scenes=abl['scenes'], schedule=abl['schedule'],
            backbone=abl.get('pretrain', {}).get('output'),
            commands=sorted({x['command'] for x in runs_}))
    return write_report(res, out_dir, 'prereg', _prereg_table,
                        _plot_prereg)


def write_report(res: dict, out_dir: str, stem: str,
                 table: Callable[[dict], List[str]],
                 plot: Callable[[dict], None]) -> dict:
    """A study's outputs in ``out_dir``: ``<stem>.md`` (the lines of
    ``table``, also printed), ``<stem>.png`` (``plot``) and
    ``<stem>.json`` (``res`` with the three paths under ``files``)."""
    os.makedirs(out_dir, exist_ok=True)
    res['files'] = dict(json=osp.join(out_dir, f'{stem}.json'),
                        table=osp.join(out_dir, f'{stem}.md'),
                        plot=osp.join(out_dir, f'{stem}.png'))
    text = '\n'.join(table(res)) + '\n'
    with open(res['files']['table'], 'w') as f:
        f.write(text)
    plot(res)
    write_json(res['files']['json'], res, overwrite=True)
    print(text)
    return res


def format_interval(ci: dict) -> str:
    """``+mean +- std [+low, +high]`` of :func:`t_interval` (the mean alone
    for one value)."""
    if ci.get('low') is None:
        return f'{ci["mean"]:+.2f}'
    return (f'{ci["mean"]:+.2f} +- {ci["std"]:.2f} '
            f'[{ci["low"]:+.2f}, {ci["high"]:+.2f}]')


def _prereg_table(res: dict) -> List[str]:
    lines = ['# Pre-registered SIAM experiment: context scenes', '',
             'val mIoU (%), SCTNet-S, pretrained start; difference = SIAM - '
             'no SIAM of the same seed; interval: 95 % t-interval of the '
             'mean difference (n - 1 degrees of freedom).', '']
    for length, r in res['lengths'].items():
        seeds = r['seeds']
        lines += [f'## {length} iterations', '',
                  *seed_table(('arm', ), seeds,
                              ('mean', 'person IoU', 'car IoU'))]
        for arm, name in (('siam', 'SIAM'), ('no_siam', 'no SIAM')):
            c = r['class_iou_mean'][arm]
            lines.append(seed_row(
                (name, ), r[arm], (f'{statistics.fmean(r[arm]):.2f}',
                                   f'{c["person"]:.1f}', f'{c["car"]:.1f}')))
        lines.append(seed_row(('SIAM - no SIAM', ), r['difference'],
                              (format_interval(r['interval']), '', ''),
                              fmt='+.2f'))
        ratio = r['ratio_align_to_ce']
        picks = [ratio[0], ratio[len(ratio) // 2], ratio[-1]] if ratio else []
        lines += ['', f'Reading: **{r["reading"]}** (mean difference '
                  f'{format_interval(r["interval"])}). Alignment/CE ratio '
                  '(mean over seeds) at iterations ' + ', '.join(
                      f'{s}: {v:.1f}' for s, v in picks) +
                  f'. Teacher val mIoU {r["teacher"]}.', '']
    return lines


def _plot_prereg(res: dict) -> None:
    plt = pyplot()
    lengths = list(res['lengths'])
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    for i, length in enumerate(lengths):
        r = res['lengths'][length]
        xs = [i + 0.06 * (k - len(r['difference']) / 2)
              for k in range(len(r['difference']))]
        ax.plot(xs, r['difference'], 'o', alpha=0.7,
                label='seeds' if i == 0 else None)
        ci = r['interval']
        if ci.get('low') is not None:
            ax.errorbar(i + 0.3, ci['mean'],
                        yerr=[[ci['mean'] - ci['low']],
                              [ci['high'] - ci['mean']]],
                        fmt='s', color='k', capsize=5,
                        label='mean, 95 % t-interval' if i == 0 else None)
        ax2.plot(*zip(*r['ratio_align_to_ce']), label=f'{length} iterations')
    ax.axhline(0, color='grey', lw=1)
    ax.set_xticks(range(len(lengths)), [f'{n} it.' for n in lengths])
    ax.set(ylabel='SIAM - no SIAM, val mIoU (points)',
           title='paired difference per seed')
    ax.legend(fontsize=8)
    ax2.set(yscale='log', xlabel='iteration',
            ylabel='alignment terms / CE terms',
            title='loss balance of the SIAM runs (mean over seeds)')
    ax2.grid(alpha=0.3)
    ax2.legend(fontsize=8)
    fig.suptitle('Pre-registered experiment: SCTNet-S on the context scenes',
                 fontsize=10)
    fig.tight_layout()
    fig.savefig(res['files']['plot'], dpi=100)
    plt.close(fig)


# ----------------------------------------------------------------------
def run_sensitivity(out_dir: str,
                    backbone: str,
                    scenes: Sequence[str] = ('street', 'context'),
                    scales: Sequence[float] = SCALES,
                    seeds: int = 3,
                    teachers: Optional[Dict[str, str]] = None,
                    teacher_iters: Optional[Dict[str, int]] = None,
                    reuse: Optional[Dict[str, Sequence[str]]] = None,
                    student_iters: Optional[int] = None,
                    batch_size: Optional[int] = None,
                    num_workers: Optional[int] = None,
                    verbose: bool = False) -> dict:
    """The declared loss-balance sensitivity study (docs/siam.md).

    For each scene and seed: the student without SIAM and with SIAM at each
    scale of the four alignment weights, all from the pretrained
    ``backbone`` and the same start. ``teachers``: scene -> converted
    teacher file (else the teacher is found or trained as the ablation
    does, ``teacher_iters`` per scene); ``reuse``: scene -> ablation
    folders whose finished runs with exactly these settings are reused.
    Writes ``sensitivity.json``, ``.md``, ``.png`` to ``out_dir``.
    """
    t0 = time.time()
    quiet = not verbose
    if seeds < 1:
        raise ConfigError('--seeds must be at least 1')
    if not osp.isfile(backbone):
        raise PathError(f'--backbone file not found: {backbone} (an export '
                        'of tools/export_backbone.py, e.g. the '
                        "pre-registered ablation's pretrain/"
                        'sct-s_generated.pth)')
    bad = [s for s in scenes if s not in SCENE_DATA]
    if bad:
        raise ConfigError(f'--scenes {bad}: choose from {list(SCENE_DATA)}')
    if not scales or any(s <= 0 for s in scales):
        raise ConfigError(f'--scales {list(scales)}: positive numbers')
    teachers, teacher_iters = teachers or {}, teacher_iters or {}
    reuse = reuse or {}
    student_cfg = load_config(STUDENT_CFG)
    iters = student_iters or student_cfg.train_cfg.max_iters
    log_every = student_cfg.default_hooks.logger.interval
    if iters // log_every < 10:
        log_every = max(1, iters // 10)
    res = dict(scales=list(scales), seeds=list(range(seeds)),
               weights=official_weights(), backbone=backbone,
               backbone_sha256=file_sha256(backbone), machine=_machine(),
               student_iters=iters, scenes={}, out_dir=out_dir)
    start_opts = [
        'model.backbone.init_cfg._delete_=True',
        'model.backbone.init_cfg.type=Pretrained',
        f'model.backbone.init_cfg.checkpoint={backbone}',
    ]
    arms = ['no_siam'] + [arm_name(s) for s in scales]
    for scene in scenes:
        print(f'== {scene} scenes')
        scene_dir = osp.join(out_dir, scene)
        os.makedirs(scene_dir, exist_ok=True)
        data_root = SCENE_DATA[scene]
        data = prepare_data(data_root, scenes=scene)
        common = data_options(data_root, batch_size, num_workers,
                              data['size'])
        given = teachers.get(scene)
        teacher = get_teacher(scene_dir, data, common,
                              teacher_iters.get(scene), (), given, quiet)
        key_base = dict(teacher_sha256=file_sha256(teacher['file']),
                        backbone_sha256=res['backbone_sha256'])
        opts = common + start_opts + [
            f'default_hooks.logger.interval={log_every}']
        runs = []
        for seed in res['seeds']:
            seen = {}
            for arm, scale in [('no_siam', None)] + [
                    (arm_name(s), s) for s in scales]:
                arm_opts = opts + (weight_options(scale) if scale else [])
                key = dict(key_base, options=arm_opts,
                           iters=student_iters, seed=seed, arm=arm)
                print(f'  seed {seed}, {arm}')
                r = train_arm(scene_dir, 'pretrained', seed, arm, arm_opts,
                              teacher['file'], student_iters, key, quiet,
                              reuse_dirs=reuse.get(scene, ()))
                r['scale'] = scale
                seen[arm] = r
                runs.append(r)
            for arm in arms[1:]:
                check_same_start(dict(siam=seen[arm],
                                       no_siam=seen['no_siam']),
                                  f'{scene} ({arm})', seed)
        res['scenes'][scene] = _summarize_scene(runs, scales, teacher)
    res['seconds'] = round(time.time() - t0, 1)
    return write_report(res, out_dir, 'sensitivity', _sensitivity_table,
                        _plot_sensitivity)


def _summarize_scene(runs: List[dict], scales, teacher: dict) -> dict:
    base = {r['seed']: r['mIoU'] for r in runs if r['arm'] == 'no_siam'}
    out = dict(no_siam=[base[s] for s in sorted(base)],
               teacher=dict(file=_display(teacher['file']),
                            val_mIoU=teacher.get('val_mIoU')),
               scales={}, runs=runs)
    out['no_siam_summary'] = summarize(out['no_siam'])
    for scale in scales:
        xs = sorted((r for r in runs if r['arm'] == arm_name(scale)),
                    key=lambda r: r['seed'])
        diffs = [round(r['mIoU'] - base[r['seed']], 2) for r in xs]
        ratio = _mean_curve([align_ce_ratio(r['losses']['curve'])
                             for r in xs])
        out['scales'][f'{scale:g}'] = dict(
            siam=[r['mIoU'] for r in xs], difference=diffs,
            siam_summary=summarize([r['mIoU'] for r in xs]),
            interval=t_interval(diffs),
            ratio_align_to_ce=[(s, round(v, 3)) for s, v in ratio])
    return out


def _sensitivity_table(res: dict) -> List[str]:
    seeds = res['seeds']
    w = ', '.join(f'{v:g}' for v in res['weights'])
    lines = ['# Loss-balance sensitivity of SIAM', '',
             f'SCTNet-S, pretrained start, {res["student_iters"]} '
             f'iterations; the four alignment weights ({w}) scaled together. '
             'val mIoU (%); difference = SIAM - no SIAM of the same seed, '
             'mean +- sample std [95 % t-interval].', '',
             *seed_table(('scenes', 'weights x'), seeds,
                         ('mean', 'difference', 'align/CE at the end'))]
    for scene, r in res['scenes'].items():
        lines.append(seed_row(
            (scene, 'no SIAM'), r['no_siam'],
            (f'{r["no_siam_summary"]["mean"]:.2f}', '', '')))
        for scale, s in r['scales'].items():
            end = s['ratio_align_to_ce'][-1][1] if s['ratio_align_to_ce'] \
                else float('nan')
            lines.append(seed_row(
                (scene, scale), s['siam'],
                (f'{s["siam_summary"]["mean"]:.2f}',
                 format_interval(s['interval']), f'{end:.2f}')))
    return lines


def _plot_sensitivity(res: dict) -> None:
    plt = pyplot()
    scenes = list(res['scenes'])
    fig, axes = plt.subplots(1, len(scenes), figsize=(5.5 * len(scenes), 4),
                             squeeze=False)
    for ax, scene in zip(axes[0], scenes):
        r = res['scenes'][scene]
        scales = [float(s) for s in r['scales']]
        for i, seed in enumerate(res['seeds']):
            ax.plot(scales, [r['scales'][f'{s:g}']['siam'][i]
                             for s in scales], 'o-', alpha=0.6,
                    label=f'SIAM, seed {seed}')
        m = r['no_siam_summary']
        ax.axhspan(min(r['no_siam']), max(r['no_siam']), color='grey',
                   alpha=0.25, label=f'no SIAM ({m["mean"]:.2f})')
        ax.set(xscale='log', xlabel='alignment weights x',
               ylabel='val mIoU (%)', title=f'{scene} scenes')
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle('SIAM loss-balance sensitivity (SCTNet-S, '
                 f'{res["student_iters"]} iterations)', fontsize=10)
    fig.tight_layout()
    fig.savefig(res['files']['plot'], dpi=100)
    plt.close(fig)
