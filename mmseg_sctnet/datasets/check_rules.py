"""The findings of the dataset checker, one :class:`Rule` each.

A rule is a small function registered with :func:`rule` (its code, level
and stage); it gets the :class:`~mmseg_sctnet.datasets.checker.SplitData`
of the split being checked (settings, entries, the sample loaded by the
dataset's own transforms and its label statistics) and returns ``None`` or
``(message, files)``, the message naming the files and values and saying
the fix. :func:`mmseg_sctnet.datasets.check_dataset` runs :data:`RULES` in
the order they are defined here. A new finding is a new function here and
a test in ``tests/test_dataset_checker.py`` on generated data.
"""
import inspect
import os
import os.path as osp
from dataclasses import dataclass
from typing import Callable, List, Sequence, Tuple

import numpy as np

# thresholds (fractions of the decoded pixels / files)
MOSTLY_IGNORED = 0.98  # error: the split cannot train
ZERO_CLASS_MIN = 0.01  # "0 is a real class" heuristic
IGNORE_PRESENT_MIN = 0.001
MAX_NAMED = 4  # files named per finding

# Cityscapes labelId -> name of the frequent classes (for the message)
CITYSCAPES_LABEL_IDS = dict(
    road=7, sidewalk=8, building=11, vegetation=21, sky=23, person=24, car=26)


def _name_files(files: Sequence[str]) -> str:
    files = list(files)
    shown = ', '.join(files[:MAX_NAMED])
    if len(files) > MAX_NAMED:
        shown += f' (and {len(files) - MAX_NAMED} more)'
    return shown


@dataclass
class Rule:
    """One finding of the checker.

    ``check(s)`` gets the :class:`SplitData` of the split being checked
    and returns ``None`` (no problem) or ``(message, files)``: the message
    names the files and values and says the fix. ``stage`` is when it runs:
    ``'config'``, ``'entries'`` (every entry, file existence), ``'files'``
    and ``'values'`` (the loaded sample). A rule is skipped when one of the
    codes in ``unless`` was found (it would repeat that finding).
    """
    code: str
    level: str
    stage: str
    check: Callable
    unless: Tuple[str, ...] = ()


RULES: List[Rule] = []


def rule(code: str, level: str, stage: str, unless: Sequence[str] = ()):
    """Register ``check`` as the rule of finding ``code``."""

    def register(check):
        RULES.append(Rule(code, level, stage, check, tuple(unless)))
        return check

    return register


# ---- configuration --------------------------------------------------------
@rule('num_classes_mismatch', 'error', 'config')
def _num_classes_mismatch(s):
    n, classes = len(s.classes), s.classes
    if s.num_classes is None or not n or s.num_classes == n:
        return None
    return (f'the model predicts num_classes={s.num_classes} but the '
            f'dataset {s.name} has {n} classes '
            f'({classes[:5]}{"..." if n > 5 else ""}). Set '
            f'model.decode_head.num_classes={n} (the auxiliary '
            'and teacher heads follow it), or give the dataset the '
            "right classes: dataset=dict(metainfo=dict(classes=(...))).", [])


@rule('reduce_zero_label_conflict', 'error', 'config')
def _reduce_zero_label_conflict(s):
    pipe = s.loader.pipeline_reduce_zero_label
    if pipe is None or bool(pipe) == s.reduce:
        return None
    return (f'the dataset has reduce_zero_label={s.reduce} but its '
            f'LoadAnnotations transform sets reduce_zero_label={pipe}; '
            'MMSegmentation stops with an assertion on the first label it '
            'loads. Set the same value in both (or remove it from '
            'LoadAnnotations: the dataset passes it on).', [])


@rule('reduce_zero_label_off', 'warning', 'config')
def _reduce_zero_label_off(s):
    try:
        p = inspect.signature(type(
            s.ds).__init__).parameters.get('reduce_zero_label')
    except (TypeError, ValueError):
        return None
    if p is None or p.default is not True or s.reduce:
        return None
    return (f'{s.name} data use 0 for "other/unlabelled" and '
            f'1..{len(s.classes)} for the classes, so the class expects '
            'reduce_zero_label=True, but it is False here: every '
            f'"other" pixel is trained as class 0 ({s.classes[:1]}) and '
            'every class is shifted by one. Remove reduce_zero_label='
            'False from the dataset (and LoadAnnotations) config.', [])


# ---- entries (every one; file existence only) -----------------------------
@rule('empty_split', 'error', 'entries')
def _empty_split(s):
    if s.entries:
        return None
    where = s.img_dir or s.data_root
    return (f'no images found: {where} has no file ending in '
            f'{s.img_suffix!r}' +
            (f' listed in {s.ann_file}' if s.ann_file else '') +
            '. Check data_root/data_prefix/img_suffix of the '
            f'{s.split} dataset (for the real layout see '
            'docs/dataset_prepare.md) or generate a demo set with '
            'mmseg_sctnet.datasets.make_cityscapes.', [])


@rule('missing_label', 'error', 'entries')
def _missing_label(s):
    if not s.missing_label:
        return None
    return (f'{len(s.missing_label)} image(s) without a label file: ' +
            _name_files(
                [f'{img} (expected {seg})' for seg, img in s.missing_label]) +
            f'. Labels are found by replacing the image suffix '
            f'{s.img_suffix!r} with {s.seg_suffix!r} under {s.ann_dir}; '
            'add the label files, remove those images, or fix '
            'seg_map_suffix/data_prefix.', [seg for seg, _ in s.missing_label])


@rule('missing_image', 'error', 'entries')
def _missing_image(s):
    if not s.missing_image:
        return None
    paths = [img for img, _ in s.missing_image]
    return (f'{len(paths)} entr(y/ies) of {s.ann_file or s.img_dir} name an '
            'image that does not exist: ' + _name_files(paths) +
            '. Fix the split file or copy the images.', paths)


@rule('label_without_image', 'warning', 'entries', unless=['empty_split'])
def _label_without_image(s):
    # folder layouts only: a split file selects on purpose
    if not s.ann_dir or s.ann_file or not osp.isdir(s.ann_dir):
        return None
    expected = {
        osp.normpath(e['seg_map_path'])
        for e in s.entries if e.get('seg_map_path')
    }
    orphans = sorted(
        osp.normpath(osp.join(root, name))
        for root, _, files in os.walk(s.ann_dir) for name in files
        if name.endswith(s.seg_suffix)
        and osp.normpath(osp.join(root, name)) not in expected)
    if not orphans:
        return None
    return (f'{len(orphans)} label file(s) without an image: ' +
            _name_files(orphans) +
            f'. The image is expected under {s.img_dir} with suffix '
            f'{s.img_suffix!r}; these labels are not used. Copy the '
            'missing images or fix img_suffix/data_prefix.', orphans)


# ---- loaded files -----------------------------------------------------------
@rule('unreadable', 'error', 'files')
def _unreadable(s):
    bad = [(x.img_path, x.img_error) for x in s.samples if x.img_error]
    bad += [(x.seg_path, x.seg_error) for x in s.samples if x.seg_error]
    if not bad:
        return None
    return (f'{len(bad)} file(s) cannot be read: ' +
            _name_files([f'{p} [{why}]' for p, why in bad]) +
            '. Re-copy or re-export them (a truncated download/copy is the '
            'usual cause), or remove them from the split.',
            [p for p, _ in bad])


@rule('size_mismatch', 'error', 'files')
def _size_mismatch(s):
    bad = [
        x for x in s.samples if x.img_shape and x.seg_shape
        and len(x.seg_shape) == 2 and x.seg_shape != x.img_shape
    ]
    if not bad:
        return None
    return (f'{len(bad)} label(s) differ in size from their image (the crop '
            'would misalign labels and pixels): ' + _name_files([
                f'{x.seg_path} is {x.seg_shape[1]}x{x.seg_shape[0]} but '
                f'{x.img_path} is {x.img_shape[1]}x{x.img_shape[0]} (WxH)'
                for x in bad
            ]) + '. Labels must have exactly the image size; export them '
            'again at full resolution (resize with nearest-neighbour if '
            'you must).', [x.seg_path for x in bad])


@rule('colour_label', 'error', 'files')
def _colour_label(s):
    bad = [x for x in s.samples if x.seg_shape and len(x.seg_shape) == 3]
    if not bad:
        return None
    msg = (f'{len(bad)} label file(s) are colour (3-channel) images: ' +
           _name_files([f'{x.seg_path} {x.seg_shape}' for x in bad]) +
           '. Labels must be single-channel PNGs whose pixel value is the '
           'class index (a palette PNG is fine); convert colour masks to '
           'indices with your palette.')
    if any(x.header.palette for x in bad):
        backend = getattr(s.loader.load_ann, 'imdecode_backend', None)
        msg += (' These are palette PNGs, which LoadAnnotations('
                f"imdecode_backend={backend!r}) decodes to colours: use "
                "imdecode_backend='pillow' (the default) to read the indices.")
    return msg, [x.seg_path for x in bad]


@rule('label_not_8bit', 'error', 'files')
def _label_not_8bit(s):
    bad = [x for x in s.samples if x.wraps]
    if not bad:
        return None
    return (f'{len(bad)} label file(s) hold values above 255, which '
            'MMSegmentation reads as uint8 (they wrap around): ' +
            _name_files([
                f'{x.seg_path} ({x.header.bit_depth}-bit PNG, max '
                f'{x.max_stored})' for x in bad
            ]) + '. Store labels as 8-bit PNGs with values '
            f'0..{max(s.n_cls - 1, 0)} and 255 for ignored pixels.',
            [x.seg_path for x in bad])


@rule('lossy_labels', 'error', 'files')
def _lossy_labels(s):
    bad = [x for x in s.samples if x.lossy and x.seg_shape]
    if not bad:
        return None
    fmts = sorted({x.header.fmt.upper() for x in bad})
    return (f'{len(bad)} label file(s) are {"/".join(fmts)} images '
            f'(seg_map_suffix={s.seg_suffix!r}): ' +
            _name_files([x.seg_path for x in bad]) +
            '. Lossy compression changes label values near edges (new, '
            'wrong class ids). Save labels as PNG and set seg_map_suffix '
            'accordingly.', [x.seg_path for x in bad])


# ---- label values (what LoadAnnotations gives the loss) --------------------
def _out_of_range_head(s) -> str:
    named = '; '.join(f'{p} has {vs[:8]}{"..." if len(vs) > 8 else ""}'
                      for p, vs in s.bad_files[:MAX_NAMED])
    if len(s.bad_files) > MAX_NAMED:
        named += f' (and {len(s.bad_files) - MAX_NAMED} more files)'
    return (f'{len(s.bad_files)} of {len(s.valued)} decoded label files hold '
            f'values outside [0, {s.n_cls}) that are not the ignore index '
            f'{s.ignore} (values {s.bad_values[:12]}'
            f'{"..." if len(s.bad_values) > 12 else ""}): {named}. ')


def _bad_paths(s) -> List[str]:
    return [p for p, _ in s.bad_files]


@rule('cityscapes_label_ids', 'error', 'values')
def _cityscapes_label_ids(s):
    if not s.bad_files:
        return None
    if s.seg_suffix and 'labelIds' in s.seg_suffix and \
            'TrainIds' not in s.seg_suffix:
        why = ('These are Cityscapes labelIds files (seg_map_suffix='
               f'{s.seg_suffix!r}): ids 0-33, e.g. road=7, car=26. '
               'Training needs labelTrainIds (0-18, 255 = ignore): set '
               "seg_map_suffix='_gtFine_labelTrainIds.png' and create "
               'the files with `python -m cityscapesscripts.preparation.'
               'createTrainIdLabelImgs` (CITYSCAPES_DATASET=<data_root>) '
               "or MMSegmentation's tools/dataset_converters/"
               'cityscapes.py.')
        return _out_of_range_head(s) + why, _bad_paths(s)
    is_city = s.name == 'CityscapesDataset' or s.n_cls == 19
    label_id_only = {v for v in CITYSCAPES_LABEL_IDS.values() if v >= 19}
    if is_city and max(s.raw_vals - {s.ignore}, default=0) <= 33 and \
            s.raw_vals & label_id_only:
        why = ('The values look like Cityscapes labelIds (0-33; road=7, '
               'building=11, sky=23, person=24, car=26) where '
               'labelTrainIds (0-18, 255 = ignore) are expected: '
               'convert the labels with `python -m cityscapesscripts.'
               'preparation.createTrainIdLabelImgs` and point '
               "seg_map_suffix at '_gtFine_labelTrainIds.png'.")
        return _out_of_range_head(s) + why, _bad_paths(s)
    return None


@rule(
    'reduce_zero_label_needed',
    'error',
    'values',
    unless=['cityscapes_label_ids'])
def _reduce_zero_label_needed(s):
    if not s.bad_files or s.reduce or 0 not in s.raw_vals or \
            s.ignore in s.raw_vals or s.bad_values != [s.n_cls]:
        return None
    n = s.n_cls
    return (_out_of_range_head(s) +
            f'The labels look 1-based with 0 = "other/unlabelled" '
            f'(ADE20K style: values 0..{n}, no {s.ignore}): set '
            'reduce_zero_label=True in the dataset config (train and '
            f'val) so 0 is ignored and 1..{n} become 0..{n - 1}.',
            _bad_paths(s))


@rule(
    'label_out_of_range',
    'error',
    'values',
    unless=['cityscapes_label_ids', 'reduce_zero_label_needed'])
def _label_out_of_range(s):
    if not s.bad_files:
        return None
    why = (f'The model has num_classes={s.n_cls}, so labels must be '
           f'0..{s.n_cls - 1} (class index) or {s.ignore} (ignored). '
           'Remap the label files, or set num_classes and the '
           "dataset's metainfo classes to match the data.")
    if s.reduce:
        why += ' reduce_zero_label=True subtracts 1 from every value first.'
    return _out_of_range_head(s) + why, _bad_paths(s)


@rule('reduce_zero_label_on_zero_based', 'warning', 'values')
def _reduce_zero_label_on_zero_based(s):
    raw, total, ign = s.raw_total, s.total, s.ignore
    if not (s.reduce and total and ign in s.raw_vals and raw[0] / total
            >= ZERO_CLASS_MIN and raw[ign] / total >= IGNORE_PRESENT_MIN
            and max(s.raw_vals - {ign}) <= s.n_cls - 1):
        return None
    return ('reduce_zero_label=True, but the labels look 0-based: they '
            f'already use {ign} for ignored pixels '
            f'({100 * raw[ign] / total:.1f}%) and value 0 covers '
            f'{100 * raw[0] / total:.1f}% of the pixels like a real class '
            f'(values seen: {sorted(s.raw_vals)[:12]}). With '
            'reduce_zero_label=True every 0 pixel is ignored and class k is '
            'trained as k-1. Set reduce_zero_label=False (dataset and '
            'LoadAnnotations) unless 0 really means "unlabelled".',
            s.first_files())


@rule('binary_mask_255', 'error', 'values')
def _binary_mask_255(s):
    ign = s.ignore
    if not s.total or s.reduce or s.n_cls != 2 or ign not in s.raw_vals or \
            not s.raw_vals <= {0, ign}:
        return None
    return (f'the masks are binary 0/{ign} '
            f'({100 * s.raw_total[ign] / s.total:.1f}% {ign}) but {ign} is '
            'the ignore index, so the foreground is never trained and every '
            'labelled pixel is class 0: the log shows "loss_ce ~0, accuracy '
            '100" and the foreground IoU stays 0. Save the masks with values '
            '0/1 (e.g. mask // 255).', s.first_files())


def _ignored_fraction(s) -> float:
    return s.eff_total[s.ignore] / max(int(s.eff_total.sum()), 1)


@rule('mostly_ignored', 'error', 'values', unless=['binary_mask_255'])
def _mostly_ignored(s):
    frac = _ignored_fraction(s)
    if not s.total or frac < MOSTLY_IGNORED:
        return None
    if s.reduce and s.raw_vals <= {0, 1}:
        why = ('reduce_zero_label=True turns the 0 pixels of these 0/1 '
               'masks into ignore. Set reduce_zero_label=False.')
    else:
        why = ('Check reduce_zero_label, label_map/metainfo classes and the '
               f'label id space (raw values seen: {sorted(s.raw_vals)[:12]}).')
    return (f'{100 * frac:.1f}% of the pixels in {len(s.valued)} decoded '
            f'label files are the ignore index {s.ignore} after '
            f'reduce_zero_label={s.reduce}: the loss sees almost nothing '
            '(symptoms: loss_ce ~0 and accuracy 100 in the log, mIoU ~0). ' +
            why, s.first_files())


@rule(
    'fully_ignored_files',
    'warning',
    'values',
    unless=['binary_mask_255', 'mostly_ignored'])
def _fully_ignored_files(s):
    files = [
        x.seg_path for x in s.valued
        if x.eff.sum() and x.eff[s.ignore] == x.eff.sum()
    ]
    if not files:
        return None
    return (f'{len(files)} label file(s) are entirely the ignore index '
            f'{s.ignore}: ' + _name_files(files) +
            '. They contribute nothing to training; check them.', files)


@rule(
    'single_class',
    'warning',
    'values',
    unless=['binary_mask_255', 'mostly_ignored'])
def _single_class(s):
    eff = s.eff_total.copy()
    eff[s.ignore] = 0
    present = np.nonzero(eff)[0]
    if not eff.sum() or len(present) != 1 or s.n_cls < 2 or \
            len(s.valued) < 2:
        return None
    c = int(present[0])
    name = s.classes[c] if c < len(s.classes) else c
    return (f'every labelled pixel in {len(s.valued)} decoded label files is '
            f'class {c} ({name}): the model cannot learn the other classes '
            'and "accuracy 100" means nothing. Check the label values and '
            'reduce_zero_label.', s.first_files())
