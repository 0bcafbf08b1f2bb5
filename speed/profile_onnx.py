#!/usr/bin/env python
"""Where an ONNX file's time goes in onnxruntime: kernel time per op type.

    python speed/profile_onnx.py work_dirs/sctnet-b_seg50_int8.onnx --threads 2
    python speed/profile_onnx.py dynamic.onnx --shape 512 1024 --runs 20 \
        --json work_dirs/speed/profile.json --trace work_dirs/speed/trace.json

onnxruntime's own profiler on the deployment session (CPU provider, all
graph optimisations, non-spinning threads); the warm-up runs are left out.
Prints a table (op type, nodes, ms per run, share of kernel time) and the
median run time; ``--json`` saves it, ``--trace`` keeps onnxruntime's
Chrome trace (chrome://tracing, Perfetto). Logic:
:func:`mmseg_sctnet.benchmark.onnx_profile.profile_onnx`.
"""
import argparse

from mmseg_sctnet.io.errors import exit_on_user_error
from mmseg_sctnet.benchmark import onnx_profile


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('model', help='ONNX file (tools/export_onnx.py)')
    p.add_argument('--shape', type=int, nargs=2, metavar=('H', 'W'),
                   help='input size (needed for a --dynamic export)')
    p.add_argument('--threads', type=int,
                   help='intra-op threads (onnxruntime default otherwise)')
    p.add_argument('--runs', type=int, default=10)
    p.add_argument('--warmup', type=int, default=2)
    p.add_argument('--top', type=int, default=15,
                   help='op types listed (the rest in one line)')
    p.add_argument('--json', help='write the result here')
    p.add_argument('--trace', help='keep onnxruntime\'s trace file here')
    p.add_argument('--overwrite', action='store_true')
    return p.parse_args(argv)


@exit_on_user_error
def main(argv=None) -> dict:
    return onnx_profile.profile_onnx(**vars(parse_args(argv)))


if __name__ == '__main__':
    main()
