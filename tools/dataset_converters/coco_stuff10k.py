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
are kept unless ``--force``.
"""
import argparse
import os
import os.path as osp
import shutil
import sys
from functools import partial

import numpy as np

COCO_LEN = 10000
UNUSED_IDS = (12, 26, 29, 30, 45, 66, 68, 69, 71, 83, 91)
SPLITS = (('train', 'train2014'), ('test', 'test2014'))


def class_id_to_train_id() -> np.ndarray:
    """256-entry lookup table: COCO-Stuff class id -> train id (0..171)."""
    lut = np.zeros(256, np.uint8)
    train_id = 1
    for cid in range(1, 183):
        if cid in UNUSED_IDS:
            continue
        lut[cid] = train_id
        train_id += 1
    assert train_id == 172
    return lut


def convert_one(name: str, src: str, out: str, split: str,
                force: bool = False) -> int:
    """Copy the image and write the train-id PNG of one image.

    Returns the number of pixels whose id is not one of the 171 classes
    (written as 0).
    """
    import cv2
    from scipy.io import loadmat
    img_out = osp.join(out, 'images', split, name + '.jpg')
    ann_out = osp.join(out, 'annotations', split, name + '_labelTrainIds.png')
    if not osp.exists(img_out) or force:
        shutil.copyfile(osp.join(src, 'images', name + '.jpg'), img_out)
    if osp.exists(ann_out) and not force:
        return 0
    mat_path = osp.join(src, 'annotations', name + '.mat')
    try:
        label = loadmat(mat_path)['S']
    except KeyError:
        raise ValueError(f'{mat_path} has no label map "S"') from None
    label = np.asarray(label)
    if label.ndim != 2:
        raise ValueError(f'{mat_path}: S has shape {label.shape}, expected '
                         'a 2-D label map')
    label = label.astype(np.int64)
    lut = class_id_to_train_id()
    inside = (label >= 0) & (label < 256)
    out_ids = np.zeros(label.shape, np.uint8)
    out_ids[inside] = lut[label[inside]]
    unknown = int(((out_ids == 0) & (label != 0)).sum())
    tmp = ann_out + '.tmp.png'
    if not cv2.imwrite(tmp, out_ids):
        raise IOError(f'could not write {tmp}')
    os.replace(tmp, ann_out)
    return unknown


def read_list(src: str, split: str):
    path = osp.join(src, 'imageLists', split + '.txt')
    if not osp.isfile(path):
        sys.exit(f'error: {path} not found; COCO_STUFF_10K must be the '
                 'unpacked cocostuff-10k-v1.1.zip (images/, annotations/, '
                 'imageLists/) (docs/dataset_prepare.md).')
    with open(path) as f:
        return [osp.splitext(line.strip())[0] for line in f if line.strip()]


def main(argv=None):
    p = argparse.ArgumentParser(
        description='COCO-Stuff-10K .mat annotations -> labelTrainIds PNG')
    p.add_argument('coco_path', help='unpacked cocostuff-10k-v1.1')
    p.add_argument('-o', '--out-dir', help='output folder (default: input)')
    p.add_argument('--nproc', type=int, default=1, help='processes')
    p.add_argument('--force', action='store_true',
                   help='rewrite existing outputs')
    args = p.parse_args(argv)
    src = args.coco_path
    out = args.out_dir or src
    for sub in ('images', 'annotations'):
        if not osp.isdir(osp.join(src, sub)):
            sys.exit(f'error: {osp.join(src, sub)} not found (expected the '
                     'unpacked cocostuff-10k-v1.1.zip)')
    lists = {split: read_list(src, split) for split, _ in SPLITS}
    total = sum(len(v) for v in lists.values())
    if total != COCO_LEN:
        print(f'note: {total} images listed (the full dataset has '
              f'{COCO_LEN}: 9000 train + 1000 test)')
    from mmengine.utils import track_parallel_progress, track_progress
    unknown = 0
    for split, folder in SPLITS:
        for sub in ('images', 'annotations'):
            os.makedirs(osp.join(out, sub, folder), exist_ok=True)
        fn = partial(
            convert_one, src=src, out=out, split=folder, force=args.force)
        print(f'{split}: {len(lists[split])} images -> {folder}')
        if args.nproc > 1:
            res = track_parallel_progress(fn, lists[split], nproc=args.nproc)
        else:
            res = track_progress(fn, lists[split])
        unknown += sum(res)
    if unknown:
        print(f'warning: {unknown} pixels had ids outside the 171 classes '
              'and were written as 0 (unlabeled)')
    print(f'\ndone: {out}/images/{{train2014,test2014}} and '
          f'{out}/annotations/{{train2014,test2014}}/*_labelTrainIds.png')


if __name__ == '__main__':
    main()
