#!/usr/bin/env python
"""The whole SCTNet method on embedded data, on a CPU, in minutes.

    make demo                              # = python tools/demo.py
    python tools/demo.py --no-siam         # the same run without SIAM

1. data     procedural street scenes in the Cityscapes on-disk layout
            (data/demo_cityscapes; generated once, reused on re-runs)
2. teacher  a SegFormer (MiT-B0) trained with plain MMSegmentation
3. convert  SegFormer checkpoint -> teacher weights (tools/pth_convert.py)
4. student  SCTNet-S trained with SIAM from that teacher
5. test     per-class IoU, mIoU and input | ground truth | prediction PNGs

Everything lands in one folder (demo_output/, or demo_output/no_siam with
--no-siam): summary.md / summary.json, miou_table.md, curves.png,
predictions/*.png, predictions_grid.png and the work dirs of each step.
The steps are functions of ``mmseg_sctnet.apis.demo`` (docs/demo.md).
"""
import argparse
import os
import os.path as osp

from mmseg_sctnet.apis.demo import DEFAULT_DATA_ROOT, ROOT, run_demo
from mmseg_sctnet.compat import exit_on_user_error


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
                   help="default: the teacher config's max_iters")
    p.add_argument('--student-iters', type=int, default=None,
                   help="default: the student config's max_iters")
    p.add_argument('--batch-size', type=int, default=None,
                   help="default: the configs' batch size (8)")
    p.add_argument(
        '--teacher',
        help='use this converted teacher (tools/pth_convert.py output) '
        'instead of training one')
    p.add_argument('--num-workers', type=int, default=None,
                   help="data loader workers (default: the configs')")
    p.add_argument('--seed', type=int, default=0, help='data seed')
    p.add_argument(
        '--grid', type=int, default=6,
        help='validation images in predictions_grid.png')
    p.add_argument(
        '--verbose',
        action='store_true',
        help='print the config dumps and environment reports of every run '
        '(they are always in the log files)')
    return p.parse_args(argv)


def _repo_path(path):
    """A user path (relative to where the demo was started) relative to
    the repository root, where the configs' paths start."""
    if path is None:
        return None
    rel = osp.relpath(osp.abspath(path), ROOT)
    return osp.abspath(path) if rel.startswith('..') else rel


@exit_on_user_error
def main(argv=None):
    args = parse_args(argv)
    out = args.out_dir or (osp.join('demo_output', 'no_siam')
                           if args.no_siam else 'demo_output')
    out, data, teacher = map(_repo_path, (out, args.data_root, args.teacher))
    os.chdir(ROOT)
    return run_demo(out, data, args.no_siam, args.n_train, args.n_val,
                    args.size, args.teacher_iters, args.student_iters,
                    args.batch_size, teacher, args.num_workers, args.seed,
                    args.grid, args.verbose)


if __name__ == '__main__':
    main()
