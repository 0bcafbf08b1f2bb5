"""COCO-Stuff-10K: ``.mat`` annotations -> ``*_labelTrainIds.png``, in the
layout MMSegmentation's ``tools/dataset_converters/coco_stuff10k.py``
writes.

Input: ``cocostuff-10k-v1.1.zip`` unpacked, i.e. ``images/*.jpg``,
``annotations/*.mat`` (label map ``S``: 0 = unlabeled, 1..182 = COCO-Stuff
class ids) and ``imageLists/{train,test}.txt``.

Output (in ``out``, default the input folder):
``images/{train2014,test2014}/<name>.jpg`` and
``annotations/{train2014,test2014}/<name>_labelTrainIds.png`` with
0 = unlabeled and 1..171 = the 171 classes in MMSegmentation's
``COCOStuffDataset`` order (class id -> train id: the 182 ids without the
11 unused ones, 12 26 29 30 45 66 68 69 71 83 91). The configs read them
with ``reduce_zero_label=True`` (0 -> 255 ignored, k -> class k-1). Ids
outside the 171 classes are written as 0 and counted. An image whose
files are missing, unreadable or of different sizes is skipped and named;
the others are converted.
"""
import os
import os.path as osp
from functools import partial

import cv2
import numpy as np
from PIL import Image

from ...io.errors import PathError, UserError
from ...io.files import check_output_dir, same_file, write_file
from .batch import BatchReport, SkipItem, run_batch

__all__ = ['convert_coco_stuff10k', 'convert_one', 'class_id_to_train_id']

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


def _read_image(path: str):
    """(H, W) of a fully decodable image (a truncated JPEG is caught)."""
    if not osp.isfile(path):
        raise SkipItem(f'image {path} is missing')
    if osp.getsize(path) == 0:
        raise SkipItem(f'image {path} is empty (0 bytes)')
    try:
        with Image.open(path) as img:
            img.load()
            return img.size[::-1]
    except Exception as e:  # PIL raises many types for damaged files
        raise SkipItem(f'image {path} is unreadable ({e})') from None


def _read_mat(path: str) -> np.ndarray:
    from scipy.io import loadmat
    if not osp.isfile(path):
        raise SkipItem(f'annotation {path} is missing')
    if osp.getsize(path) == 0:
        raise SkipItem(f'annotation {path} is empty (0 bytes)')
    try:
        mat = loadmat(path)
    except Exception as e:  # scipy raises ValueError, TypeError, ...
        raise SkipItem(f'annotation {path} is not a readable MATLAB file '
                       f'({" ".join(str(e).split())})') from None
    if 'S' not in mat:
        raise SkipItem(f'annotation {path} has no label map "S"')
    label = np.asarray(mat['S'])
    if label.ndim != 2 or not np.issubdtype(label.dtype, np.number):
        raise SkipItem(f'annotation {path}: S has shape {label.shape} '
                       f'({label.dtype}), expected a 2-D label map')
    return label.astype(np.int64)


def convert_one(item, src: str, out: str, force: bool = False):
    """Copy the image and write the train-id PNG of one image.

    Args:
        item: ``(name, split folder)``, e.g.
            ``('COCO_train2014_000000000077', 'train2014')``.

    Returns:
        ``('kept', 0)`` when both outputs exist (no ``force``), else
        ``('converted', n)`` with ``n`` the pixels whose id is not one of
        the 171 classes (written as 0).

    Raises:
        SkipItem: a missing, unreadable or mismatched file.
    """
    name, split = item
    if not name or name in ('.', '..') or '/' in name or '\\' in name:
        raise SkipItem(f'name {name!r} in imageLists is not a file name')
    img_src = osp.join(src, 'images', name + '.jpg')
    mat_path = osp.join(src, 'annotations', name + '.mat')
    img_out = osp.join(out, 'images', split, name + '.jpg')
    ann_out = osp.join(out, 'annotations', split, name + '_labelTrainIds.png')
    if osp.exists(img_out) and osp.exists(ann_out) and not force:
        return 'kept', 0
    inputs = [img_src, mat_path]
    for o in (img_out, ann_out):
        for i in inputs:
            if osp.exists(o) and same_file(o, i):
                raise SkipItem(f'output {o} is the input {i} (linked '
                               'folders?); not writing over it')
    hw = _read_image(img_src)
    label = _read_mat(mat_path)
    if label.shape != hw:
        raise SkipItem(f'label map S of {mat_path} is '
                       f'{label.shape[0]}x{label.shape[1]} but the image '
                       f'{hw[0]}x{hw[1]}')
    inside = (label >= 0) & (label < 256)
    out_ids = np.zeros(label.shape, np.uint8)
    out_ids[inside] = class_id_to_train_id()[label[inside]]
    unknown = int(((out_ids == 0) & (label != 0)).sum())
    ok, png = cv2.imencode('.png', out_ids)
    if not ok:
        raise SkipItem(f'could not encode the label map of {name} as PNG')
    if force or not osp.exists(img_out):
        with open(img_src, 'rb') as f:
            write_file(img_out, f.read(), overwrite=True, inputs=inputs)
    write_file(ann_out, png.tobytes(), overwrite=True, inputs=inputs)
    return 'converted', unknown


def read_list(src: str, split: str):
    """Names (without extension) listed in ``imageLists/<split>.txt``."""
    path = osp.join(src, 'imageLists', split + '.txt')
    if not osp.isfile(path):
        raise PathError(f'{path} not found; COCO_STUFF_10K must be the '
                        'unpacked cocostuff-10k-v1.1.zip (images/, '
                        'annotations/, imageLists/) '
                        '(docs/dataset_prepare.md).')
    try:
        with open(path) as f:
            lines = f.read().splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise PathError(f'cannot read {path}: {e}') from None
    names = [osp.splitext(ln.strip())[0] for ln in lines if ln.strip()]
    return list(dict.fromkeys(names))  # once each, in order


def _check_folders(src: str, out: str) -> None:
    """An output folder that *is* an input folder (through a link) would
    have the outputs written over the inputs."""
    inputs = [osp.join(src, 'images'), osp.join(src, 'annotations')]
    for _, folder in SPLITS:
        for sub in ('images', 'annotations'):
            target = osp.join(out, sub, folder)
            for i in inputs:
                if osp.exists(target) and same_file(target, i):
                    raise PathError(
                        f'output folder {target} is the input folder {i}; '
                        'the outputs would be written over the inputs. '
                        'Choose another --out-dir or remove the link.')


def convert_coco_stuff10k(src: str,
                          out: str = None,
                          nproc: int = 1,
                          force: bool = False) -> BatchReport:
    """Convert the unpacked COCO-Stuff-10K in ``src`` into ``out``.

    Existing outputs are kept unless ``force``; outputs are written
    atomically, so an interrupted run is simply run again. Returns the
    :class:`BatchReport` (``finish()`` gives the exit status).

    Raises:
        UserError: ``src`` is not the unpacked dataset, lists nothing,
            ``out`` is not writable or links into the inputs, ``nproc`` < 1.
    """
    if nproc < 1:
        raise UserError(f'--nproc must be at least 1, got {nproc}')
    out = out or src
    for sub in ('images', 'annotations'):
        if not osp.isdir(osp.join(src, sub)):
            raise PathError(f'{osp.join(src, sub)} not found (expected the '
                            'unpacked cocostuff-10k-v1.1.zip)')
    lists = {split: read_list(src, split) for split, _ in SPLITS}
    total = sum(len(v) for v in lists.values())
    if total == 0:
        raise PathError(f'{osp.join(src, "imageLists")}/{{train,test}}.txt '
                        'list no images.')
    check_output_dir(out)
    _check_folders(src, out)
    if total != COCO_LEN:
        print(f'note: {total} images listed (the full dataset has '
              f'{COCO_LEN}: 9000 train + 1000 test)')
    report = BatchReport(what='images')
    for split, folder in SPLITS:
        for sub in ('images', 'annotations'):
            os.makedirs(osp.join(out, sub, folder), exist_ok=True)
        print(f'{split}: {len(lists[split])} images -> {folder}')
        report.merge(
            run_batch(
                partial(convert_one, src=src, out=out, force=force),
                [(n, folder) for n in lists[split]],
                nproc=nproc,
                name=lambda it: f'{split} image {it[0]!r}',
                what='images'))
    unknown = sum(r[1] for _, r in report.results)
    if unknown:
        print(f'warning: {unknown} pixels had ids outside the 171 classes '
              'and were written as 0 (unlabeled)')
    kept = sum(r[0] == 'kept' for _, r in report.results)
    print(f'\n{len(report.results) - kept} converted, {kept} kept, '
          f'{len(report.skipped)} skipped: {out}/images/{{train2014,'
          f'test2014}} and {out}/annotations/{{train2014,test2014}}/'
          '*_labelTrainIds.png')
    return report
