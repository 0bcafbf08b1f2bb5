#!/usr/bin/env python
"""Write Cityscapes ``*_gtFine_labelTrainIds.png`` (what the configs read).

    python tools/dataset_converters/cityscapes.py data/cityscapes [--nproc 8]

Input: the official ``gtFine_trainvaltest.zip`` unpacked next to
``leftImg8bit``, i.e. ``CITYSCAPES/gtFine/{train,val,test}/<city>/``
with ``<stem>_gtFine_polygons.json`` (and ``<stem>_gtFine_labelIds.png``).

For every image the train-id map is drawn from the polygons with
cityscapesscripts (``json2labelImg(..., 'trainIds')``: the 19 evaluated
classes get 0..18, everything else 255). Where a polygon file is missing,
``*_gtFine_labelIds.png`` is mapped id -> trainId with cityscapesscripts'
label table instead. Existing ``*_labelTrainIds.png`` files are kept
unless ``--force``. ``train.txt`` / ``val.txt`` / ``test.txt`` image lists
(``<city>/<stem>``) are written to CITYSCAPES as MMSegmentation's own
converter does.
"""
import argparse
import glob
import os
import os.path as osp
import sys
from functools import partial

import numpy as np

SUFFIX_POLY = '_gtFine_polygons.json'
SUFFIX_IDS = '_gtFine_labelIds.png'
SUFFIX_OUT = '_gtFine_labelTrainIds.png'


def id_to_train_id_lut() -> np.ndarray:
    """256-entry lookup table labelId -> trainId (255 for ignored ids)."""
    from cityscapesscripts.helpers.labels import labels
    lut = np.full(256, 255, np.uint8)
    for lab in labels:
        if 0 <= lab.id < 256:
            lut[lab.id] = lab.trainId if 0 <= lab.trainId < 255 else 255
    return lut


def convert_one(stem: str, force: bool = False) -> str:
    """Write ``stem + SUFFIX_OUT``; returns 'json', 'ids' or 'kept'."""
    out = stem + SUFFIX_OUT
    if osp.exists(out) and not force:
        return 'kept'
    poly = stem + SUFFIX_POLY
    tmp = out + '.tmp.png'
    if osp.isfile(poly):
        from cityscapesscripts.preparation.json2labelImg import json2labelImg
        try:
            json2labelImg(poly, tmp, 'trainIds')
        except SystemExit:  # cityscapesscripts exits on unknown labels
            raise ValueError(f'{poly}: a polygon has a label that is not a '
                             'Cityscapes label (cityscapesscripts printed '
                             'it above)') from None
        how = 'json'
    else:
        import cv2
        ids = cv2.imread(stem + SUFFIX_IDS, cv2.IMREAD_UNCHANGED)
        if ids is None or ids.ndim != 2:
            raise ValueError(f'{stem + SUFFIX_IDS}: not a single-channel '
                             'label image')
        if not cv2.imwrite(tmp, id_to_train_id_lut()[ids]):
            raise IOError(f'could not write {tmp}')
        how = 'ids'
    os.replace(tmp, out)
    return how


def find_stems(gt_dir: str):
    stems = set()
    for suffix in (SUFFIX_POLY, SUFFIX_IDS):
        for f in glob.glob(osp.join(gt_dir, '**', '*' + suffix),
                           recursive=True):
            stems.add(f[:-len(suffix)])
    return sorted(stems)


def write_split_lists(root: str, gt_dir: str, force: bool):
    written = {}
    for split in ('train', 'val', 'test'):
        split_dir = osp.join(gt_dir, split)
        if not osp.isdir(split_dir):
            continue
        names = sorted(
            osp.relpath(f[:-len(SUFFIX_OUT)], split_dir)
            for f in glob.glob(
                osp.join(split_dir, '**', '*' + SUFFIX_OUT), recursive=True))
        names = [n.replace('_gtFine', '') for n in names]
        path = osp.join(root, f'{split}.txt')
        if osp.exists(path) and not force:
            print(f'kept existing {path} (--force rewrites it)')
            continue
        with open(path, 'w') as f:
            f.writelines(n + '\n' for n in names)
        written[split] = len(names)
    return written


def main(argv=None):
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
    args = p.parse_args(argv)

    root = args.cityscapes_path
    gt_dir = osp.join(root, args.gt_dir)
    if not osp.isdir(gt_dir):
        sys.exit(f'error: {gt_dir} not found. Unpack gtFine_trainvaltest.zip '
                 f'into {root} so that {gt_dir}/{{train,val,test}}/<city>/ '
                 'exist (docs/dataset_prepare.md).')
    stems = find_stems(gt_dir)
    if not stems:
        sys.exit(f'error: no *{SUFFIX_POLY} or *{SUFFIX_IDS} files under '
                 f'{gt_dir}; is this the gtFine annotation folder?')
    from mmengine.utils import track_parallel_progress, track_progress
    fn = partial(convert_one, force=args.force)
    if args.nproc > 1:
        how = track_parallel_progress(fn, stems, nproc=args.nproc)
    else:
        how = track_progress(fn, stems)
    counts = {k: how.count(k) for k in ('json', 'ids', 'kept')}
    print(f'\n{len(stems)} annotations: {counts["json"]} drawn from polygons, '
          f'{counts["ids"]} mapped from labelIds, {counts["kept"]} existing '
          'labelTrainIds kept')
    if not args.no_split_lists:
        for split, n in write_split_lists(root, gt_dir, args.force).items():
            print(f'wrote {osp.join(root, split + ".txt")} ({n} images)')


if __name__ == '__main__':
    main()
