#!/usr/bin/env python
"""The demo student with fewer images per step and in mixed precision.

    python tools/training_study.py                       # batch 8, 4, 2 and 8 --amp, seeds 0-2
    python tools/training_study.py --batches 8 4 --no-amp --seeds 1

For each seed, SCTNet-S with SIAM on the demo's street scenes (from
scratch, the demo teacher, 200 iterations) at each batch size with the
learning rate scaled linearly (--auto-scale-lr), and at the first batch
size with --amp; all runs of a seed from the same start. Writes
demo_output/training_study/ (training_study.json, .md, .png). Logic:
:func:`mmseg_sctnet.experiments.training_studies.run_training_study`.
"""
import argparse
import os

from mmseg_sctnet.experiments.demo import ROOT, repo_path
from mmseg_sctnet.experiments.training_studies import (BATCHES,
                                                       run_training_study)
from mmseg_sctnet.io.errors import exit_on_user_error


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description='demo student: batch size and mixed precision')
    p.add_argument('--seeds', type=int, default=3)
    p.add_argument('--batches', type=int, nargs='+', default=list(BATCHES),
                   help='batch sizes, the reference first (default 8 4 2)')
    p.add_argument('--no-amp', action='store_true',
                   help='leave out the --amp run')
    p.add_argument('--teacher', help='a converted demo teacher (default: '
                   "the demo's, else trained here)")
    p.add_argument('--student-iters', type=int, default=None)
    p.add_argument('--num-workers', type=int, default=None)
    p.add_argument('--out-dir', default='demo_output/training_study')
    p.add_argument('--verbose', action='store_true')
    return p.parse_args(argv)


@exit_on_user_error
def main(argv=None):
    args = parse_args(argv)
    out, teacher = repo_path(args.out_dir), repo_path(args.teacher)
    os.chdir(ROOT)
    return run_training_study(out, args.seeds, args.batches,
                              not args.no_amp, teacher,
                              student_iters=args.student_iters,
                              num_workers=args.num_workers,
                              verbose=args.verbose)


if __name__ == '__main__':
    main()
