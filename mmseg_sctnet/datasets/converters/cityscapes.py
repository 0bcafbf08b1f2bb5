"""Cityscapes ``gtFine`` -> ``*_gtFine_labelTrainIds.png`` (what the
configs read), as MMSegmentation's ``tools/dataset_converters/
cityscapes.py`` writes them.

Input: the official ``gtFine_trainvaltest.zip`` unpacked next to
``leftImg8bit``, i.e. ``CITYSCAPES/gtFine/{train,val,test}/<city>/`` with
``<stem>_gtFine_polygons.json`` (and ``<stem>_gtFine_labelIds.png``).

For every annotation the train-id map is drawn from the polygons with
cityscapesscripts (``createLabelImage(..., 'trainIds')``: the 19 evaluated
classes get 0..18, everything else 255). Where a polygon file is missing,
``*_gtFine_labelIds.png`` is mapped id -> trainId with cityscapesscripts'
label table instead. An annotation that cannot be converted (unreadable
file, unknown label, a size that differs from its ``leftImg8bit`` image,
a missing image) is skipped and named; the others are converted.
"""
import glob
import os.path as osp
from functools import partial
from typing import Optional

import cv2
import numpy as np
from PIL import Image

from ...io.errors import PathError, UserError
from ...io.files import check_output_dir, write_file
from .batch import BatchReport, SkipItem, run_batch

__all__ = ['convert_cityscapes', 'convert_one', 'id_to_train_id_lut']

SUFFIX_POLY = '_gtFine_polygons.json'
SUFFIX_IDS = '_gtFine_labelIds.png'
SUFFIX_OUT = '_gtFine_labelTrainIds.png'
SUFFIX_IMG = '_leftImg8bit.png'
SPLITS = ('train', 'val', 'test')


def id_to_train_id_lut() -> np.ndarray:
    """256-entry lookup table labelId -> trainId (255 for ignored ids)."""
    from cityscapesscripts.helpers.labels import labels
    lut = np.full(256, 255, np.uint8)
    for lab in labels:
        if 0 <= lab.id < 256:
            lut[lab.id] = lab.trainId if 0 <= lab.trainId < 255 else 255
    return lut


def _draw_polygons(poly: str) -> np.ndarray:
    from cityscapesscripts.helpers.annotation import Annotation
    from cityscapesscripts.helpers.labels import name2label
    from cityscapesscripts.preparation.json2labelImg import createLabelImage
    ann = Annotation()
    try:
        ann.fromJsonFile(poly)
    except ValueError as e:  # json.JSONDecodeError
        raise SkipItem(f'not valid JSON ({e})') from None
    except (KeyError, TypeError) as e:
        raise SkipItem(f'not a Cityscapes polygon file (no {e})') from None
    if not (ann.imgHeight >= 1 and ann.imgWidth >= 1):
        raise SkipItem(f'image size {ann.imgHeight}x{ann.imgWidth} in the '
                       'JSON')
    for obj in ann.objects:  # cityscapesscripts would sys.exit on these
        label = obj.label
        if label not in name2label and label.endswith('group'):
            label = label[:-len('group')]
        if label not in name2label and not obj.deleted:
            raise SkipItem(f'a polygon has the label {obj.label!r}, which is '
                           'not a Cityscapes label')
    return np.array(createLabelImage(ann, 'trainIds'), np.uint8)


def _read_png(path: str, what: str) -> np.ndarray:
    if osp.isfile(path) and osp.getsize(path) == 0:
        raise SkipItem(f'{what} is empty (0 bytes)')
    try:
        with Image.open(path) as img:
            img.load()
            return np.array(img)
    except FileNotFoundError:
        raise SkipItem(f'{what} not found') from None
    except Exception as e:  # PIL raises many types for damaged files
        raise SkipItem(f'unreadable {what} ({e})') from None


def _map_label_ids(ids_path: str) -> np.ndarray:
    ids = _read_png(ids_path, 'labelIds image')
    if ids.ndim != 2:
        raise SkipItem(f'labelIds image has {ids.shape[-1]} channels; '
                       'labelIds are single-channel')
    if ids.dtype != np.uint8:
        if ids.size and (ids.min() < 0 or ids.max() > 255):
            raise SkipItem(f'labelIds values up to {ids.max()} (not 8-bit)')
        ids = ids.astype(np.uint8)
    return id_to_train_id_lut()[ids]


def _image_size(path: str):
    try:
        with Image.open(path) as img:
            return img.size[::-1]
    except FileNotFoundError:
        raise SkipItem(f'its image {path} is missing') from None
    except Exception as e:
        raise SkipItem(f'its image {path} is unreadable ({e})') from None


def convert_one(item, force: bool = False) -> str:
    """Write the labelTrainIds PNG of one annotation.

    Args:
        item: ``(stem, image)``: the annotation path without suffix, and
            its ``leftImg8bit`` image (None: not checked).

    Returns:
        ``'json'`` (drawn from polygons), ``'ids'`` (mapped from labelIds)
        or ``'kept'`` (output exists, no ``force``).

    Raises:
        SkipItem: the annotation is bad (the message says why).
    """
    stem, image = item
    out = stem + SUFFIX_OUT
    if osp.exists(out) and not force:
        return 'kept'
    poly, ids = stem + SUFFIX_POLY, stem + SUFFIX_IDS
    if osp.isfile(poly):
        label, how = _draw_polygons(poly), 'json'
    else:
        label, how = _map_label_ids(ids), 'ids'
    if image is not None:
        size = _image_size(image)
        if size != label.shape:
            raise SkipItem(f'label {label.shape[0]}x{label.shape[1]} but '
                           f'image {image} {size[0]}x{size[1]}')
    ok, png = cv2.imencode('.png', label)
    if not ok:
        raise SkipItem('could not encode the label map as PNG')
    write_file(out, png.tobytes(), overwrite=True, inputs=[poly, ids])
    return how


def find_stems(gt_dir: str):
    stems = set()
    for suffix in (SUFFIX_POLY, SUFFIX_IDS):
        for f in glob.glob(
                osp.join(glob.escape(gt_dir), '**', '*' + suffix),
                recursive=True):
            stems.add(f[:-len(suffix)])
    return sorted(stems)


def _image_of(root: str, gt_dir: str, stem: str) -> Optional[str]:
    """The leftImg8bit image of ``stem``, or None when that split has no
    image folder (labels converted without images: not checked)."""
    rel = osp.relpath(stem, gt_dir)
    split = rel.split(osp.sep)[0]
    img_dir = osp.join(root, 'leftImg8bit', split)
    if not osp.isdir(img_dir):
        return None
    name = osp.relpath(rel, split).replace('_gtFine', '')
    return osp.join(img_dir, name.replace(osp.sep, '/') + SUFFIX_IMG)


def write_split_lists(root: str, gt_dir: str, force: bool, skipped=()):
    """``train.txt``/``val.txt``/``test.txt`` (``<city>/<stem>``) of the
    labelTrainIds files present, without the skipped annotations."""
    written = {}
    skipped = {s + SUFFIX_OUT for s in skipped}
    for split in SPLITS:
        split_dir = osp.join(gt_dir, split)
        if not osp.isdir(split_dir):
            continue
        names = sorted(
            osp.relpath(f[:-len(SUFFIX_OUT)], split_dir)
            for f in glob.glob(
                osp.join(glob.escape(split_dir), '**', '*' + SUFFIX_OUT),
                recursive=True) if f not in skipped)
        names = [n.replace('_gtFine', '') for n in names]
        path = osp.join(root, f'{split}.txt')
        if osp.exists(path) and not force:
            print(f'kept existing {path} (--force rewrites it)')
            continue
        write_file(path, ''.join(n + '\n' for n in names).encode(),
                   overwrite=True)
        written[split] = len(names)
    return written


def convert_cityscapes(root: str,
                       gt_dir: str = 'gtFine',
                       nproc: int = 1,
                       force: bool = False,
                       split_lists: bool = True) -> BatchReport:
    """Write ``*_gtFine_labelTrainIds.png`` next to every annotation under
    ``root/gt_dir`` and (``split_lists``) the image lists in ``root``.

    Existing outputs are kept unless ``force``; outputs are written
    atomically, so an interrupted run is simply run again. Returns the
    :class:`BatchReport` (``finish()`` gives the exit status).

    Raises:
        UserError: ``root``/``gt_dir`` missing or without annotations, not
            writable, or ``nproc`` < 1.
    """
    if nproc < 1:
        raise UserError(f'--nproc must be at least 1, got {nproc}')
    gt = osp.join(root, gt_dir)
    if not osp.isdir(gt):
        raise PathError(
            f'{gt} not found. Unpack gtFine_trainvaltest.zip into {root} so '
            f'that {gt}/{{train,val,test}}/<city>/ exist '
            '(docs/dataset_prepare.md).')
    stems = find_stems(gt)
    if not stems:
        raise PathError(f'no *{SUFFIX_POLY} or *{SUFFIX_IDS} files under '
                        f'{gt}; is this the gtFine annotation folder?')
    check_output_dir(gt, what='annotation folder')
    if split_lists:
        check_output_dir(root, what='dataset folder')
    unchecked = [
        s for s in SPLITS if osp.isdir(osp.join(gt, s))
        and not osp.isdir(osp.join(root, 'leftImg8bit', s))
    ]
    if unchecked:
        print(f'note: no {osp.join(root, "leftImg8bit")}/'
              f'{{{",".join(unchecked)}}}: label sizes of those splits are '
              'not compared with their images')
    items = [(s, _image_of(root, gt, s)) for s in stems]
    report = run_batch(
        partial(convert_one, force=force),
        items,
        nproc=nproc,
        name=lambda it: it[0] + (SUFFIX_POLY if osp.isfile(it[0] + SUFFIX_POLY)
                                 else SUFFIX_IDS),
        what='annotations')
    print(f'\n{len(stems)} annotations: {report.count("json")} drawn from '
          f'polygons, {report.count("ids")} mapped from labelIds, '
          f'{report.count("kept")} existing labelTrainIds kept, '
          f'{len(report.skipped)} skipped')
    if split_lists:
        done = {item[0] for item, _ in report.results}
        bad = [s for s, _ in items if s not in done]
        for split, n in write_split_lists(root, gt, force, bad).items():
            print(f'wrote {osp.join(root, split + ".txt")} ({n} images)')
    return report
