#!/usr/bin/env python
"""The whole SCTNet method on embedded data, on a CPU, in minutes.

    make demo                              # = python tools/demo.py
    python tools/demo.py --no-siam         # the same run without SIAM
    python tools/demo.py --amp             # mixed precision (bf16 on CPU)
    python tools/demo.py --ablation        # SIAM vs no SIAM, 3 seeds each,
                                           # pretrained and scratch starts
    python tools/demo.py --ablation --scenes context   # long-range scenes

1. data     procedural street scenes in the Cityscapes on-disk layout
            (data/demo_cityscapes; generated once, reused on re-runs)
2. teacher  a SegFormer (MiT-B0) trained with plain MMSegmentation
3. convert  SegFormer checkpoint -> teacher weights (tools/pth_convert.py)
4. student  SCTNet-S trained with SIAM from that teacher
5. test     per-class IoU, mIoU and input | ground truth | prediction PNGs

Everything lands in one folder (demo_output/, or demo_output/no_siam with
--no-siam): summary.md / summary.json, miou_table.md, curves.png,
predictions/*.png, predictions_grid.png and the work dirs of each step.
The steps are functions of ``mmseg_sctnet.experiments.demo`` (docs/demo.md).

--ablation (``mmseg_sctnet.experiments.ablation``) trains the student with and
without SIAM from the same start for --seeds seeds, from a backbone
pretrained on generated classification data (configs/pretrain/) and from
scratch, and writes demo_output/ablation/: ablation.json (``siam`` and
``no_siam``: val mIoU per seed), ablation.md (mean +- std), ablation.png
and loss_balance.png.
"""
import argparse
import os
import os.path as osp

from mmseg_sctnet.experiments.ablation import STARTS, run_ablation
from mmseg_sctnet.experiments.demo import (ROOT, STUDENT_CFG, TEACHER_CFG,
                                          repo_path, run_demo)
from mmseg_sctnet.io.errors import exit_on_user_error


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description='SCTNet demo: data, teacher, conversion, SCTNet-S with '
        'SIAM, evaluation; all on CPU.')
    p.add_argument('--out-dir', help='output folder (default demo_output, '
                   'demo_output/no_siam with --no-siam, demo_output/ablation '
                   'with --ablation, demo_output/ablation_context with '
                   '--ablation --scenes context)')
    p.add_argument(
        '--data-root',
        help='where the generated dataset lives (reused when it matches; '
        'default data/demo_cityscapes, data/demo_context for --scenes '
        'context)')
    p.add_argument(
        '--scenes', choices=('street', 'context'), default='street',
        help="generated scenes: 'street' (the demo's) or 'context' (cars "
        'and people drawn alike, told apart only by the sky far above)')
    p.add_argument(
        '--ablation', action='store_true',
        help='SIAM vs no SIAM over --seeds seeds from the same start '
        '(demo_output/ablation)')
    p.add_argument('--seeds', type=int, default=3,
                   help='--ablation: seeds per arm (default 3)')
    p.add_argument(
        '--start', choices=STARTS + ('both', ), default='both',
        help='--ablation: the student starts from a backbone pretrained on '
        'generated classification data, from scratch, or both (default)')
    p.add_argument(
        '--backbone',
        help='--ablation: start the pretrained arm from this exported '
        'backbone (tools/export_backbone.py output, e.g. an earlier '
        "ablation's pretrain/sct-s_generated.pth) instead of pretraining")
    p.add_argument('--pretrain-epochs', type=int, default=None,
                   help='--ablation: pretraining epochs (default: the '
                   "pretraining config's)")
    p.add_argument(
        '--student-config', default=STUDENT_CFG,
        help='--ablation: another student (an EncoderDecoderDistill '
        'config on the demo data, e.g. configs/siam/'
        'ddrnet-23-slim_siam_demo_cityscapes.py; with --start scratch '
        'unless its backbone is SCTNet)')
    p.add_argument(
        '--teacher-config', default=TEACHER_CFG,
        help='--ablation: another teacher to train and convert (e.g. '
        'configs/siam/upernet_convnext-atto_demo_cityscapes.py; the '
        "student config's siam_head must describe it)")
    p.add_argument(
        '--no-siam',
        action='store_true',
        help='train the student without SIAM (model.use_siam=False): the '
        'ablation; no teacher is trained')
    p.add_argument(
        '--amp',
        action='store_true',
        help='train the teacher and the student in mixed precision '
        '(tools/train.py --amp: fp16 on a CUDA GPU, bf16 on a CPU with '
        'AVX512-BF16/AMX; refused elsewhere)')
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
    args = p.parse_args(argv)
    only = [o for o, v in (('--seeds', args.seeds != 3),
                           ('--start', args.start != 'both'),
                           ('--backbone', args.backbone),
                           ('--pretrain-epochs', args.pretrain_epochs),
                           ('--student-config',
                            args.student_config != STUDENT_CFG),
                           ('--teacher-config',
                            args.teacher_config != TEACHER_CFG))
            if v]
    if only and not args.ablation:
        p.error(f'{", ".join(only)}: only with --ablation')
    if args.ablation and args.no_siam:
        p.error('--no-siam and --ablation: the ablation trains both arms')
    if args.ablation and args.amp:
        p.error('--amp: not with --ablation (its runs are fp32)')
    return args


@exit_on_user_error
def main(argv=None):
    args = parse_args(argv)
    context = args.scenes == 'context'
    if args.ablation:
        out = args.out_dir or osp.join(
            'demo_output', 'ablation_context' if context else 'ablation')
    else:
        out = args.out_dir or osp.join(
            'demo_output_context' if context else 'demo_output',
            'no_siam' if args.no_siam else '')
    data = args.data_root or ('data/demo_context'
                              if context else 'data/demo_cityscapes')
    out, data, teacher, backbone = map(
        repo_path, (out, data, args.teacher, args.backbone))
    # the defaults name repository paths; a given config is the user's path
    student_cfg, teacher_cfg = (
        given if given == default else repo_path(given)
        for given, default in ((args.student_config, STUDENT_CFG),
                               (args.teacher_config, TEACHER_CFG)))
    os.chdir(ROOT)
    if args.ablation:
        starts = STARTS if args.start == 'both' else (args.start, )
        return run_ablation(
            out, data, args.seeds, starts, args.scenes, args.n_train,
            args.n_val, args.size, args.teacher_iters, args.student_iters,
            args.batch_size, teacher, args.num_workers, args.seed,
            args.pretrain_epochs,
            backbone=backbone,
            demo_dirs=('demo_output_context' if context else 'demo_output', ),
            verbose=args.verbose, student_config=student_cfg,
            teacher_config=teacher_cfg)
    return run_demo(out, data, args.no_siam, args.n_train, args.n_val,
                    args.size, args.teacher_iters, args.student_iters,
                    args.batch_size, teacher, args.num_workers, args.seed,
                    args.grid, args.verbose, args.scenes, amp=args.amp)


if __name__ == '__main__':
    main()
