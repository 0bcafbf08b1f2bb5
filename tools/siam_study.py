#!/usr/bin/env python
"""SIAM studies on the generated data (docs/siam.md).

    # the report of the pre-registered experiment, from its two ablations
    python tools/siam_study.py prereg-report \
        --run 200=demo_output/prereg_context_200it \
        --run 600=demo_output/prereg_context_600it \
        --out-dir demo_output/prereg_context

    # the declared loss-balance sensitivity study
    python tools/siam_study.py sensitivity \
        --backbone demo_output/prereg_context_200it/pretrain/sct-s_generated.pth \
        --teacher context=demo_output/prereg_context_200it/teacher/segformer_mit-b0_teacher.pth \
        --reuse context=demo_output/prereg_context_200it \
        --out-dir demo_output/sensitivity

``prereg-report`` only reads the ablation folders (``tools/demo.py
--ablation``); ``sensitivity`` trains what has not been trained with the
same settings before. Logic: :mod:`mmseg_sctnet.experiments.siam_studies`.
"""
import argparse
import os

from mmseg_sctnet.experiments.demo import ROOT, repo_path
from mmseg_sctnet.experiments.siam_studies import (SCALES, SCENE_DATA,
                                                   prereg_report,
                                                   run_sensitivity)
from mmseg_sctnet.io.errors import exit_on_user_error


def _pairs(values, what, key_type=str):
    """``['a=b', ...]`` -> ``{a: b}``."""
    out = {}
    for v in values or []:
        k, sep, path = v.partition('=')
        if not sep or not k or not path:
            raise SystemExit(f'error: {what} {v!r}: write KEY=PATH')
        try:
            out.setdefault(key_type(k), []).append(path)
        except ValueError:
            raise SystemExit(f'error: {what} {v!r}: {k!r} is not a number')
    return out


def parse_args(argv=None):
    p = argparse.ArgumentParser(description='SIAM studies (docs/siam.md)')
    sub = p.add_subparsers(dest='study', required=True)
    r = sub.add_parser('prereg-report',
                       help='report the pre-registered experiment')
    r.add_argument('--run', action='append', required=True,
                   metavar='ITERS=DIR',
                   help='student length and the --out-dir of its ablation')
    r.add_argument('--out-dir', default='demo_output/prereg_context')
    s = sub.add_parser('sensitivity',
                       help='the declared loss-balance sensitivity study')
    s.add_argument('--backbone', required=True,
                   help='the pretrained backbone every run starts from')
    s.add_argument('--scenes', nargs='+', default=['street', 'context'],
                   choices=sorted(SCENE_DATA))
    s.add_argument('--scales', nargs='+', type=float, default=list(SCALES),
                   help='factors of the four alignment weights')
    s.add_argument('--seeds', type=int, default=3)
    s.add_argument('--teacher', action='append', metavar='SCENE=FILE',
                   help='converted teacher of a scene (else found or '
                   'trained as the ablation does)')
    s.add_argument('--teacher-iters', action='append', metavar='SCENE=N',
                   help='iterations of a teacher trained here (default: '
                   "the teacher config's)")
    s.add_argument('--reuse', action='append', metavar='SCENE=DIR',
                   help='an ablation folder whose finished runs with the '
                   'same settings are reused')
    s.add_argument('--student-iters', type=int, default=None)
    s.add_argument('--batch-size', type=int, default=None)
    s.add_argument('--num-workers', type=int, default=None)
    s.add_argument('--out-dir', default='demo_output/sensitivity')
    s.add_argument('--verbose', action='store_true')
    return p.parse_args(argv)


@exit_on_user_error
def main(argv=None):
    args = parse_args(argv)
    out = repo_path(args.out_dir)
    if args.study == 'prereg-report':
        runs = {k: repo_path(v[-1])
                for k, v in _pairs(args.run, '--run', int).items()}
        os.chdir(ROOT)
        return prereg_report(runs, out)
    teachers = {k: repo_path(v[-1])
                for k, v in _pairs(args.teacher, '--teacher').items()}
    iters = {k: int(v[-1]) for k, v in _pairs(args.teacher_iters,
                                              '--teacher-iters').items()}
    reuse = {k: [repo_path(p) for p in v]
             for k, v in _pairs(args.reuse, '--reuse').items()}
    backbone = repo_path(args.backbone)
    os.chdir(ROOT)
    return run_sensitivity(
        out, backbone, args.scenes, args.scales, args.seeds, teachers,
        iters, reuse, args.student_iters, args.batch_size, args.num_workers,
        args.verbose)


if __name__ == '__main__':
    main()
