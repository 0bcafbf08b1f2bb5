"""How the demo student trains with fewer images per step and in mixed
precision (``tools/training_study.py``).

For each seed, the demo's SCTNet-S with SIAM (street scenes, from scratch,
the demo teacher, 200 iterations) is trained

* at batch 8 (the demo's), 4 and 2 with the learning rate scaled by the
  linear rule of ``--auto-scale-lr`` (MMEngine's ``auto_scale_lr``:
  lr x batch / 8), the same number of iterations;
* at batch 8 with ``--amp`` (bf16 autocast on a CPU with AVX512-BF16/AMX,
  fp16 with loss scaling on a CUDA GPU).

All runs of a seed start from the same student tensors
(:class:`~mmseg_sctnet.engine.SameStartHook` records the digests). Every
value goes to ``training_study.json``; the table to ``.md``; a chart to
``.png``. Runs finished before with the same settings are reused.
"""
import os
import statistics
import time
from typing import List, Optional, Sequence

from ..io.checksum import file_sha256
from ..io.config import load_config
from ..io.errors import ConfigError
from ..visualization.pyplot import pyplot
from .ablation import get_teacher, seed_row, seed_table, summarize, train_arm
from .demo import (DEFAULT_DATA_ROOT, STUDENT_CFG, _machine, data_options,
                   generated_settings, prepare_data)
from .siam_studies import format_interval, t_interval, write_report

__all__ = ['BATCHES', 'run_training_study', 'variants']

#: the batch sizes compared (the demo's first)
BATCHES = (8, 4, 2)


def variants(batches: Sequence[int], amp: bool) -> list:
    """``[(name, batch, amp)]``: each batch in fp32, then the first batch
    with ``--amp``."""
    out = [(f'batch{b}', b, False) for b in batches]
    if amp:
        out.append((f'batch{batches[0]}_amp', batches[0], True))
    return out


def run_training_study(out_dir: str,
                       seeds: int = 3,
                       batches: Sequence[int] = BATCHES,
                       amp: bool = True,
                       teacher: Optional[str] = None,
                       data_root: str = DEFAULT_DATA_ROOT,
                       student_iters: Optional[int] = None,
                       num_workers: Optional[int] = None,
                       verbose: bool = False,
                       teacher_iters: Optional[int] = None) -> dict:
    """The study into ``out_dir`` (paths relative to the repository root);
    ``teacher``: a converted demo teacher (else found or trained as the
    ablation does, ``teacher_iters`` iterations)."""
    t0 = time.time()
    quiet = not verbose
    if seeds < 1:
        raise ConfigError('--seeds must be at least 1')
    if not batches or any(b < 1 for b in batches):
        raise ConfigError(f'--batches {list(batches)}: positive numbers')
    base = load_config(STUDENT_CFG)
    base_batch = base.auto_scale_lr.base_batch_size
    base_lr = base.optim_wrapper.optimizer.lr
    os.makedirs(out_dir, exist_ok=True)
    # the demo data as it is in data_root (generated with the demo's
    # defaults when missing)
    data = prepare_data(data_root, **generated_settings(data_root))
    common = data_options(data_root, None, num_workers, data['size'])
    teacher = get_teacher(out_dir, data, common, teacher_iters,
                          ('demo_output', ), teacher, quiet)
    res = dict(seeds=list(range(seeds)), batches=list(batches), amp=amp,
               machine=_machine(), base_batch_size=base_batch,
               base_lr=base_lr, student_iters=student_iters or
               base.train_cfg.max_iters, teacher=dict(
                   file=teacher['file'], val_mIoU=teacher.get('val_mIoU'),
                   sha256=file_sha256(teacher['file'])), runs=[])
    names = variants(batches, amp)
    for seed in res['seeds']:
        for name, batch, use_amp in names:
            opts = data_options(data_root, batch, num_workers,
                                data['size']) + [
                'auto_scale_lr.enable=True', 'default_hooks.logger.interval=10'
            ]
            key = dict(teacher_sha256=res['teacher']['sha256'],
                       options=opts, iters=student_iters, seed=seed,
                       arm=name, amp=use_amp)
            print(f'  seed {seed}, {name} (lr {base_lr * batch / base_batch:g}'
                  f'{", --amp" if use_amp else ""})')
            r = train_arm(out_dir, 'scratch', seed, name, opts,
                          teacher['file'], student_iters, key, quiet,
                          amp=use_amp)
            r.update(variant=name, batch=batch,
                     lr=base_lr * batch / base_batch)
            res['runs'].append(r)
            print(f'    val mIoU {r["mIoU"]:.2f} ({r["seconds"]:.0f} s)')
    ref = names[0][0]
    res['summary'] = {}
    for name, batch, use_amp in names:
        runs = sorted((r for r in res['runs'] if r['variant'] == name),
                      key=lambda r: r['seed'])
        base_runs = {r['seed']: r for r in res['runs']
                     if r['variant'] == ref}
        diffs = [round(r['mIoU'] - base_runs[r['seed']]['mIoU'], 2)
                 for r in runs]
        res['summary'][name] = dict(
            batch=batch, amp=use_amp, lr=base_lr * batch / base_batch,
            mIoU=[r['mIoU'] for r in runs], stats=summarize(
                [r['mIoU'] for r in runs]),
            difference=diffs, interval=t_interval(diffs) if name != ref
            else None,
            seconds=[r['seconds'] for r in runs])
    inits = {}
    for r in res['runs']:
        inits.setdefault(r['seed'], set()).add(r.get('init_sha256'))
    res['same_start_per_seed'] = all(len(v) == 1 for v in inits.values())
    res['seconds'] = round(time.time() - t0, 1)
    return write_report(res, out_dir, 'training_study',
                        lambda r: _table(r, ref), _plot)


def _table(res: dict, ref: str) -> List[str]:
    seeds = res['seeds']
    lines = ['# Demo student: batch size and mixed precision', '',
             f'SCTNet-S with SIAM (street scenes, from scratch, '
             f'{res["student_iters"]} iterations), val mIoU (%); lr scaled '
             f'linearly from {res["base_lr"]:g} at batch '
             f'{res["base_batch_size"]}. Difference: paired with {ref} of '
             'the same seed, mean +- std [95 % t-interval]. Training '
             'seconds: wall time of each run (the machine may have been '
             'shared; speed/train_cost.py times iterations in one process).',
             '', *seed_table(('variant', 'lr'), seeds,
                             ('mean +- std', 'difference', 'seconds (mean)'))]
    for name, s in res['summary'].items():
        diff = '' if s['interval'] is None else format_interval(
            s['interval'])
        lines.append(seed_row(
            (name, f'{s["lr"]:g}'), s['mIoU'],
            (f'{s["stats"]["mean"]:.2f} +- {s["stats"]["std"]:.2f}', diff,
             f'{statistics.fmean(s["seconds"]):.0f}')))
    return lines


def _plot(res: dict) -> None:
    plt = pyplot()
    names = list(res['summary'])
    fig, ax = plt.subplots(figsize=(6.4, 4))
    for i, seed in enumerate(res['seeds']):
        ax.plot(range(len(names)), [res['summary'][n]['mIoU'][i]
                                    for n in names], 'o-', alpha=0.6,
                label=f'seed {seed}')
    for x, n in enumerate(names):
        st = res['summary'][n]['stats']
        ax.errorbar(x + 0.1, st['mean'], yerr=st['std'], fmt='s', color='k',
                    capsize=4)
    ax.set_xticks(range(len(names)), names)
    ax.set(ylabel='val mIoU (%)', title='demo student: batch size (lr '
           'scaled) and --amp')
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(res['files']['plot'], dpi=100)
    plt.close(fig)
