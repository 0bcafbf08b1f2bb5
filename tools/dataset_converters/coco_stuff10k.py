#!/usr/bin/env python
"""COCO-Stuff-10K: ``.mat`` annotations -> ``*_labelTrainIds.png``.

    python tools/dataset_converters/coco_stuff10k.py data/coco_stuff10k \
        [-o OUT_DIR] [--nproc 8]

Input: ``cocostuff-10k-v1.1.zip`` unpacked, i.e.
``images/*.jpg``, ``annotations/*.mat`` (label map ``S``: 0 = unlabeled,
1..182 = COCO-Stuff class ids) and ``imageLists/{train,test}.txt``.

Output (as MMSegmentation's converter writes it, in OUT_DIR, default the
input folder): ``images/{train2014,test2014}/<name>.jpg`` and
``annotations/{train2014,test2014}/<name>_labelTrainIds.png`` with
0 = unlabeled and 1..171 = the 171 classes in MMSegmentation's
``COCOStuffDataset`` order (class id -> train id: the 182 ids without the
11 unused ones, 12 26 29 30 45 66 68 69 71 83 91). The configs read them
with ``reduce_zero_label=True`` (0 -> 255 ignored, k -> class k-1). Ids
outside the 171 classes are written as 0 and counted. Existing outputs
are kept unless ``--force``. A bad image (missing, unreadable, label map
of another size) is skipped with one line naming it; the rest is
converted, and the exit status is 1 when anything was skipped. Outputs
are written atomically: an interrupted run is simply run again.
Logic: :mod:`mmseg_sctnet.datasets.converters.coco_stuff10k`.
"""
import argparse
import sys

from mmseg_sctnet.io.errors import exit_on_user_error
from mmseg_sctnet.datasets.converters import convert_coco_stuff10k


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description='COCO-Stuff-10K .mat annotations -> labelTrainIds PNG')
    p.add_argument('coco_path', help='unpacked cocostuff-10k-v1.1')
    p.add_argument('-o', '--out-dir', help='output folder (default: input)')
    p.add_argument('--nproc', type=int, default=1, help='processes')
    p.add_argument('--force', action='store_true',
                   help='rewrite existing outputs')
    return p.parse_args(argv)


@exit_on_user_error
def main(argv=None) -> int:
    args = parse_args(argv)
    return convert_coco_stuff10k(
        args.coco_path, args.out_dir, nproc=args.nproc,
        force=args.force).finish()


if __name__ == '__main__':
    sys.exit(main())
