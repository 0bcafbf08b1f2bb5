#!/usr/bin/env python
"""SCTNet against real-time peers, same process, same input, same options.

    python speed/compare_peers.py --shape 512 1024 --device cpu
    python speed/compare_peers.py --shape 1024 2048 --device cuda --fp16

Models (random weights, nothing downloaded): SCTNet-S/B from this
repository's Cityscapes configs, and PIDNet-S/M/L, DDRNet-23-slim/23,
BiSeNetV2, STDC1/2 and SegFormer-B0 built from MMSegmentation 1.2.2's own
Cityscapes configs (pretrained inits stripped, SyncBN -> BN, 19 classes).
Every model is timed by the same harness as ``speed/torch_speed.py``
(batch 1, random input, warm-up, iterations adapted to ``--min-time``,
final bilinear upsampling to the input size included), one after the other;
``--rounds N`` repeats that N times interleaved and reports the median
(use it on a shared machine).

``--deploy``: SCTNet runs ``switch_to_deploy``; the peers, which have no
deploy mode of their own, get every BatchNorm that directly consumes a
convolution's output folded into it (pairs found by data flow), checked
numerically against the eager model (a peer whose folded output differs
is timed eager and marked).
``--channels-last`` (default: on with ``--deploy``) applies to all models.

Written to ``--out-dir`` (default ``work_dirs/speed/peers_<H>x<W>_<device>
[_deploy][_fp16]``): ``table.txt`` (the printed table), ``results.json`` and
``chart.png`` (FPS bars, SCTNet highlighted; params and GFLOPs
annotated). Existing files are kept unless ``--overwrite``.

GFLOPs are exact (``FlopCounterMode``: convolutions and matrix products,
2 x MACs); params are those an inference forward uses (no auxiliary or
training-only heads). The logic is
:func:`mmseg_sctnet.benchmark.peers.compare_peers`.
"""
import argparse

from mmseg_sctnet.io.errors import exit_on_user_error
from mmseg_sctnet.benchmark import peers


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--shape', type=int, nargs=2, default=(512, 1024),
                   metavar=('H', 'W'), help='input size (default 512 1024)')
    p.add_argument('--models', default=','.join(peers.MODELS),
                   help=f'comma-separated subset of {",".join(peers.MODELS)}')
    p.add_argument('--device', help='cpu or cuda (default: cuda if present)')
    p.add_argument('--deploy', action='store_true')
    p.add_argument('--channels-last', action=argparse.BooleanOptionalAction,
                   default=None)
    p.add_argument('--fp16', action='store_true', help='GPU only')
    p.add_argument('--compile', action='store_true')
    p.add_argument('--warmup', type=int, default=10)
    p.add_argument('--min-time', type=float, default=6.0)
    p.add_argument('--calib-time', type=float, default=1.0)
    p.add_argument('--iters', type=int)
    p.add_argument('--rounds', type=int, default=1, help='time every model '
                   'this many times, interleaved, and report the median '
                   '(robust against changing background load; default 1)')
    p.add_argument('--threads', type=int)
    p.add_argument('--out-dir')
    p.add_argument('--overwrite', action='store_true')
    return p.parse_args(argv)


@exit_on_user_error
def main(argv=None) -> dict:
    return peers.compare_peers(**vars(parse_args(argv)))


if __name__ == '__main__':
    main()
