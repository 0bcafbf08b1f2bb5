#!/usr/bin/env python
"""What a training iteration costs, and SIAM's share of it.

    python speed/train_cost.py                       # the demo student, fp32
    python speed/train_cost.py --amp --json work_dirs/speed/train_cost.json
    python speed/train_cost.py --config configs/sctnet/cityscapes/sctnet-s_seg50_8x2_160k_cityscapes.py --batch 2 --shape 512 1024

Times, interleaved in one process: the student's training step without
SIAM, with SIAM, the frozen teacher's forward and the SIAM head alone;
with --amp the training steps again under --amp (bf16 on a CPU with
AVX512-BF16/AMX, fp16 on a GPU). Logic:
:func:`mmseg_sctnet.benchmark.train_cost.train_cost`.
"""
import argparse

from mmseg_sctnet.benchmark.train_cost import DEFAULT_CONFIG, train_cost
from mmseg_sctnet.io.errors import exit_on_user_error


def parse_args(argv=None):
    p = argparse.ArgumentParser(description='training cost and SIAM share')
    p.add_argument('--config', default=DEFAULT_CONFIG,
                   help='a SIAM student config (default: the demo student)')
    p.add_argument('--batch', type=int, default=None,
                   help="images per step (default: the config's)")
    p.add_argument('--shape', type=int, nargs=2, metavar=('H', 'W'),
                   help="input size (default: the config's crop size)")
    p.add_argument('--device', default=None, help='cpu or cuda')
    p.add_argument('--amp', action='store_true',
                   help="also time the training steps under --amp")
    p.add_argument('--rounds', type=int, default=5)
    p.add_argument('--iters', type=int, default=2,
                   help='iterations per variant and round')
    p.add_argument('--warmup', type=int, default=2)
    p.add_argument('--threads', type=int, default=None)
    p.add_argument('--json', default=None, help='write the figures here')
    p.add_argument('--overwrite', action='store_true')
    return p.parse_args(argv)


@exit_on_user_error
def main(argv=None):
    return train_cost(**vars(parse_args(argv)))


if __name__ == '__main__':
    main()
