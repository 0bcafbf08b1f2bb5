#!/usr/bin/env python
"""Write Cityscapes ``*_gtFine_labelTrainIds.png`` (what the configs read).

    python tools/dataset_converters/cityscapes.py data/cityscapes [--nproc 8]

Input: the official ``gtFine_trainvaltest.zip`` unpacked next to
``leftImg8bit``, i.e. ``CITYSCAPES/gtFine/{train,val,test}/<city>/``
with ``<stem>_gtFine_polygons.json`` (and ``<stem>_gtFine_labelIds.png``).

For every image the train-id map is drawn from the polygons with
cityscapesscripts (``'trainIds'`` encoding: the 19 evaluated classes get
0..18, everything else 255). Where a polygon file is missing,
``*_gtFine_labelIds.png`` is mapped id -> trainId with cityscapesscripts'
label table instead. Existing ``*_labelTrainIds.png`` files are kept
unless ``--force``. ``train.txt`` / ``val.txt`` / ``test.txt`` image lists
(``<city>/<stem>``) are written to CITYSCAPES as MMSegmentation's own
converter does. A bad annotation (unreadable, unknown label, size unlike
its image, image missing) is skipped with one line naming it; the rest is
converted, and the exit status is 1 when anything was skipped. Outputs
are written atomically: an interrupted run is simply run again.
Logic: :mod:`mmseg_sctnet.datasets.converters.cityscapes`.
"""
import argparse
import sys

from mmseg_sctnet.io.errors import exit_on_user_error
from mmseg_sctnet.datasets.converters import convert_cityscapes


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description='Cityscapes: gtFine polygons/labelIds -> labelTrainIds')
    p.add_argument('cityscapes_path', help='folder with leftImg8bit/, gtFine/')
    p.add_argument('--gt-dir', default='gtFine',
                   help='annotation folder inside cityscapes_path')
    p.add_argument('--nproc', type=int, default=1, help='processes')
    p.add_argument('--force', action='store_true',
                   help='rewrite existing labelTrainIds files and lists')
    p.add_argument('--no-split-lists', action='store_true',
                   help='do not write train.txt/val.txt/test.txt')
    return p.parse_args(argv)


@exit_on_user_error
def main(argv=None) -> int:
    args = parse_args(argv)
    return convert_cityscapes(
        args.cityscapes_path,
        gt_dir=args.gt_dir,
        nproc=args.nproc,
        force=args.force,
        split_lists=not args.no_split_lists).finish()


if __name__ == '__main__':
    sys.exit(main())
