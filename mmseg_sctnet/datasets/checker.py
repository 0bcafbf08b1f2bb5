"""Find the data mistakes that make segmentation training fail silently.

Users of the original release lost days to data that *loads* but is wrong:
labels in the wrong id space gave "loss_ce 0, accuracy 100" and mIoU near 0
(its issues #24 and #35), and a missing label file crashes a run hours in.
:func:`check_dataset` inspects the real MMSegmentation dataset object a
config builds (its ``data_list``, ``reduce_zero_label``, ``label_map``,
suffixes and pipeline) and reports, naming files and values and saying the
fix:

errors
    images without labels; an empty split; unreadable images/labels;
    image/label size mismatches; colour (3-channel) or >8-bit label images;
    label values outside ``[0, num_classes)`` other than the ignore index
    (diagnosed: Cityscapes ``labelIds`` where ``labelTrainIds`` are
    expected, 1-based labels with 0 = "other" but ``reduce_zero_label``
    off, lossy JPEG labels); splits where nearly every pixel is ignored
    (and binary masks saved as 0/255); ``num_classes`` of the model
    differing from the dataset's classes; ``reduce_zero_label`` of the
    dataset and of ``LoadAnnotations`` disagreeing.
warnings
    labels without images; ``reduce_zero_label`` probably set wrongly
    (on 0-based data that already uses 255 for ignore, or off for a dataset
    class that needs it, e.g. ADE20K); label files that are entirely
    ignored; every labelled pixel belonging to one class.

The pairing checks look at every entry (file existence only); pixel checks
decode ``max_files`` files (all when None). ``tools/check_dataset.py`` is the
command line; :class:`mmseg_sctnet.engine.DatasetCheckHook` runs a cheap
sample when training starts.
"""
import inspect
import os
import os.path as osp
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence

import numpy as np

__all__ = [
    'Finding', 'DatasetReport', 'check_dataset', 'check_config',
    'build_split_dataset', 'check_data_paths', 'unwrap_datasets',
    'CITYSCAPES_LABEL_IDS'
]

# thresholds (fractions of the decoded pixels / files)
MOSTLY_IGNORED = 0.98  # error: the split cannot train
ZERO_CLASS_MIN = 0.01  # "0 is a real class" heuristic
IGNORE_PRESENT_MIN = 0.001
MAX_NAMED = 4  # files named per finding

# Cityscapes labelId -> name of the frequent classes (for the message)
CITYSCAPES_LABEL_IDS = dict(
    road=7, sidewalk=8, building=11, vegetation=21, sky=23, person=24, car=26)


@dataclass
class Finding:
    """One problem: ``level`` is ``'error'`` or ``'warning'``; ``code`` a
    stable identifier (e.g. ``'missing_label'``); ``message`` names files,
    values and the fix; ``files`` lists the offending paths."""
    level: str
    code: str
    message: str
    files: List[str] = field(default_factory=list)

    def format(self) -> str:
        return f'{self.level.upper()} [{self.code}] {self.message}'


@dataclass
class DatasetReport:
    """Result of :func:`check_dataset`."""
    split: str
    description: str
    num_entries: int = 0
    num_decoded: int = 0
    findings: List[Finding] = field(default_factory=list)
    label_fractions: Dict[int, float] = field(default_factory=dict)

    @property
    def errors(self) -> List[Finding]:
        return [f for f in self.findings if f.level == 'error']

    @property
    def warnings(self) -> List[Finding]:
        return [f for f in self.findings if f.level == 'warning']

    def ok(self, allow_warnings: bool = False) -> bool:
        return not self.errors and (allow_warnings or not self.warnings)

    def codes(self) -> List[str]:
        return [f.code for f in self.findings]

    def summary(self) -> str:
        return (f'Dataset check, {self.split} split ({self.description}): '
                f'{self.num_entries} entries, {self.num_decoded} decoded; '
                f'{len(self.errors)} error(s), {len(self.warnings)} '
                'warning(s)')

    def format(self, values: bool = False) -> str:
        lines = [self.summary()]
        lines += ['  ' + f.format() for f in self.findings]
        if values and self.label_fractions:
            parts = [
                f'{v}: {100 * p:.1f}%'
                for v, p in sorted(self.label_fractions.items())
            ]
            lines.append('  label values seen by the loss (after '
                         'reduce_zero_label / label_map), share of pixels: ' +
                         ', '.join(parts))
        return '\n'.join(lines)


def _name_files(files: Sequence[str]) -> str:
    files = list(files)
    shown = ', '.join(files[:MAX_NAMED])
    if len(files) > MAX_NAMED:
        shown += f' (and {len(files) - MAX_NAMED} more)'
    return shown


def unwrap_datasets(dataset) -> list:
    """The leaf datasets inside MMEngine/MMSeg dataset wrappers."""
    if hasattr(dataset, 'datasets'):  # ConcatDataset
        out = []
        for d in dataset.datasets:
            out += unwrap_datasets(d)
        return out
    if hasattr(dataset, 'dataset') and not hasattr(dataset, 'data_list'):
        return unwrap_datasets(dataset.dataset)  # Repeat/ClassBalanced/Mix
    return [dataset]


def _pipeline_reduce_zero_label(dataset) -> Optional[bool]:
    pipeline = getattr(dataset, 'pipeline', None)
    for t in getattr(pipeline, 'transforms', []) or []:
        if type(t).__name__ == 'LoadAnnotations':
            return getattr(t, 'reduce_zero_label', None)
    return None


def _class_default_reduce_zero_label(dataset) -> Optional[bool]:
    try:
        p = inspect.signature(
            type(dataset).__init__).parameters.get('reduce_zero_label')
    except (TypeError, ValueError):
        return None
    if p is None or p.default is inspect.Parameter.empty:
        return None
    return p.default


def _exists(path: str, backend_args) -> bool:
    if backend_args is None and '://' not in path:
        return osp.isfile(path)
    from mmengine import fileio
    return fileio.exists(path, backend_args=backend_args)


def _read_bytes(path: str, backend_args) -> bytes:
    from mmengine import fileio
    return fileio.get(path, backend_args=backend_args)


def _image_backend(dataset) -> str:
    pipeline = getattr(dataset, 'pipeline', None)
    for t in getattr(pipeline, 'transforms', []) or []:
        if type(t).__name__ == 'LoadImageFromFile':
            return getattr(t, 'imdecode_backend', 'cv2')
    return 'cv2'


def _lut(reduce_zero_label: bool, label_map: Optional[dict]) -> np.ndarray:
    """Raw uint8 value -> value the loss sees (as mmseg LoadAnnotations)."""
    lut = np.arange(256, dtype=np.int64)
    if reduce_zero_label:
        lut = np.where(lut == 0, 255, lut - 1)
        lut[lut == 254] = 255
    if label_map:
        mapped = lut.copy()
        for old, new in label_map.items():
            mapped[lut == old] = new
        lut = mapped
    return lut


class _Collector:
    """Groups per-file problems into one finding per kind."""

    def __init__(self):
        self.items: Dict[str, List] = {}

    def add(self, code: str, path: str, detail=None):
        self.items.setdefault(code, []).append((path, detail))

    def get(self, code: str) -> List:
        return self.items.get(code, [])


def check_dataset(dataset,
                  num_classes: Optional[int] = None,
                  ignore_index: Optional[int] = None,
                  max_files: Optional[int] = None,
                  seed: int = 0,
                  split: str = 'train',
                  progress: bool = False) -> DatasetReport:
    """Check a built MMSegmentation dataset (wrappers are unwrapped).

    Args:
        dataset: the dataset object (``BaseSegDataset`` or a wrapper).
        num_classes: the model's number of classes (``decode_head``); the
            dataset's ``metainfo['classes']`` is used when None and
            compared with it otherwise.
        ignore_index: the loss's ignore index; the dataset's (255) if None.
        max_files: decode at most this many (image, label) pairs per leaf
            dataset, chosen with ``seed``; all when None. Existence of every
            file is checked regardless.
        seed: seed of the sample.
        split: name used in messages.
        progress: show a progress bar while decoding.

    Returns:
        DatasetReport: the findings (see the module docstring).
    """
    leaves = unwrap_datasets(dataset)
    if len(leaves) == 1:
        return _check_leaf(leaves[0], num_classes, ignore_index, max_files,
                           seed, split, progress)
    reports = [
        _check_leaf(d, num_classes, ignore_index, max_files, seed, split,
                    progress) for d in leaves
    ]
    merged = DatasetReport(
        split=split,
        description=' + '.join(r.description for r in reports),
        num_entries=sum(r.num_entries for r in reports),
        num_decoded=sum(r.num_decoded for r in reports))
    for r in reports:
        merged.findings += r.findings
    return merged


def _check_leaf(ds, num_classes, ignore_index, max_files, seed, split,
                progress) -> DatasetReport:
    if hasattr(ds,
               'full_init') and not getattr(ds, '_fully_initialized', True):
        ds.full_init()
    data_root = getattr(ds, 'data_root', None) or ''
    prefix = getattr(ds, 'data_prefix', {}) or {}
    img_dir = prefix.get('img_path') or ''
    ann_dir = prefix.get('seg_map_path')
    classes = list(ds.metainfo.get('classes', []) or [])
    ds_classes = len(classes)
    report = DatasetReport(
        split=split,
        description=f'{type(ds).__name__}, images {img_dir}, labels '
        f'{ann_dir}')
    F = report.findings
    n_cls = num_classes if num_classes is not None else ds_classes
    ignore = ignore_index if ignore_index is not None else getattr(
        ds, 'ignore_index', 255)
    backend_args = getattr(ds, 'backend_args', None)
    img_suffix = getattr(ds, 'img_suffix', '')
    seg_suffix = getattr(ds, 'seg_map_suffix', '')
    ann_file = getattr(ds, 'ann_file', '') or ''

    # ---- configuration consistency -------------------------------------
    if num_classes is not None and ds_classes and num_classes != ds_classes:
        F.append(
            Finding(
                'error', 'num_classes_mismatch',
                f'the model predicts num_classes={num_classes} but the '
                f'dataset {type(ds).__name__} has {ds_classes} classes '
                f'({classes[:5]}{"..." if ds_classes > 5 else ""}). Set '
                f'model.decode_head.num_classes={ds_classes} (the auxiliary '
                'and teacher heads follow it), or give the dataset the '
                "right classes: dataset=dict(metainfo=dict(classes=(...)))."))
    reduce = bool(getattr(ds, 'reduce_zero_label', False))
    pipe_reduce = _pipeline_reduce_zero_label(ds)
    if pipe_reduce is not None and bool(pipe_reduce) != reduce:
        F.append(
            Finding(
                'error', 'reduce_zero_label_conflict',
                f'the dataset has reduce_zero_label={reduce} but its '
                f'LoadAnnotations transform sets reduce_zero_label='
                f'{pipe_reduce}; MMSegmentation stops with an assertion on '
                'the first label it loads. Set the same value in both (or '
                'remove it from LoadAnnotations: the dataset passes it on).'))
    default_reduce = _class_default_reduce_zero_label(ds)
    if default_reduce and not reduce:
        F.append(
            Finding(
                'warning', 'reduce_zero_label_off',
                f'{type(ds).__name__} data use 0 for "other/unlabelled" and '
                f'1..{ds_classes} for the classes, so the class expects '
                'reduce_zero_label=True, but it is False here: every '
                f'"other" pixel is trained as class 0 ({classes[:1]}) and '
                'every class is shifted by one. Remove reduce_zero_label='
                'False from the dataset (and LoadAnnotations) config.'))

    # ---- pairing ------------------------------------------------------
    # (data_list is emptied when the dataset serialises it)
    entries = [ds.get_data_info(i) for i in range(len(ds))]
    report.num_entries = len(entries)
    if not entries:
        where = osp.join(img_dir) if img_dir else data_root
        F.append(
            Finding(
                'error', 'empty_split',
                f'no images found: {where} has no file ending in '
                f'{img_suffix!r}' +
                (f' listed in {ann_file}' if ann_file else '') +
                '. Check data_root/data_prefix/img_suffix of the '
                f'{split} dataset (for the real layout see '
                'docs/dataset_prepare.md) or generate a demo set with '
                'mmseg_sctnet.datasets.make_cityscapes.'))
        return report
    col = _Collector()
    seg_paths = []
    for info in entries:
        img = info.get('img_path')
        seg = info.get('seg_map_path')
        if img and not _exists(img, backend_args):
            col.add('missing_image', img, seg)
        if seg is not None:
            seg_paths.append(seg)
            if not _exists(seg, backend_args):
                col.add('missing_label', seg, img)
    missing = col.get('missing_label')
    if missing:
        F.append(
            Finding(
                'error', 'missing_label',
                f'{len(missing)} image(s) without a label file: ' +
                _name_files(
                    [f'{img} (expected {seg})' for seg, img in missing]) +
                f'. Labels are found by replacing the image suffix '
                f'{img_suffix!r} with {seg_suffix!r} under {ann_dir}; add '
                'the label files, remove those images, or fix '
                'seg_map_suffix/data_prefix.', [s for s, _ in missing]))
    missing_img = col.get('missing_image')
    if missing_img:
        F.append(
            Finding(
                'error', 'missing_image',
                f'{len(missing_img)} entr(y/ies) of {ann_file or img_dir} '
                'name an image that does not exist: ' +
                _name_files([p for p, _ in missing_img]) +
                '. Fix the split file or copy the images.',
                [p for p, _ in missing_img]))
    # labels without images (folder layouts; split files select on purpose)
    if ann_dir and not ann_file and osp.isdir(ann_dir):
        expected = {osp.normpath(p) for p in seg_paths}
        orphans = []
        for root, _, files in os.walk(ann_dir):
            for name in files:
                if name.endswith(seg_suffix):
                    p = osp.normpath(osp.join(root, name))
                    if p not in expected:
                        orphans.append(p)
        if orphans:
            orphans.sort()
            F.append(
                Finding(
                    'warning', 'label_without_image',
                    f'{len(orphans)} label file(s) without an image: ' +
                    _name_files(orphans) +
                    f'. The image is expected under {img_dir} with suffix '
                    f'{img_suffix!r}; these labels are not used. Copy the '
                    'missing images or fix img_suffix/data_prefix.', orphans))

    # ---- pixel checks on a sample --------------------------------------
    skip = {img for _, img in missing} | {p for p, _ in missing_img}
    ok_entries = [
        e for e in entries
        if e.get('seg_map_path') and e.get('img_path') not in skip
    ]
    if max_files is not None and len(ok_entries) > max_files:
        rng = np.random.default_rng(seed)
        idx = np.sort(rng.choice(len(ok_entries), max_files, replace=False))
        sample = [ok_entries[i] for i in idx]
    else:
        sample = ok_entries
    label_map = entries[0].get('label_map')
    lut = _lut(reduce, label_map)
    raw_total = np.zeros(256, np.int64)
    eff_total = np.zeros(256, np.int64)
    per_file_eff = []
    img_backend = _image_backend(ds)
    import mmcv
    iterator = sample
    if progress:
        from mmengine.utils import track_iter_progress
        iterator = track_iter_progress(sample)
    for info in iterator:
        img_path, seg_path = info['img_path'], info['seg_map_path']
        try:
            img = mmcv.imfrombytes(
                _read_bytes(img_path, backend_args),
                flag='color',
                backend=img_backend)
        except Exception as err:  # noqa: BLE001 (any decoder failure)
            img, img_err = None, err
        else:
            img_err = None
        if img is None:
            col.add('unreadable', img_path,
                    f'image ({img_err or "cannot be decoded"})')
        try:
            lbl = mmcv.imfrombytes(
                _read_bytes(seg_path, backend_args),
                flag='unchanged',
                backend='pillow')
        except Exception as err:  # noqa: BLE001
            lbl, lbl_err = None, err
        else:
            lbl_err = None
        if lbl is None:
            col.add('unreadable', seg_path,
                    f'label ({lbl_err or "cannot be decoded"})')
            continue
        report.num_decoded += 1
        lbl = np.asarray(lbl)
        if lbl.ndim == 3 and lbl.shape[2] > 1:
            col.add('colour_label', seg_path, lbl.shape)
            continue
        lbl = lbl.reshape(lbl.shape[:2])
        if img is not None and img.shape[:2] != lbl.shape[:2]:
            col.add('size_mismatch', seg_path,
                    (img_path, img.shape[:2], lbl.shape[:2]))
        if lbl.dtype != np.uint8:
            vmax = int(lbl.max()) if lbl.size else 0
            if vmax > 255 or lbl.min() < 0:
                col.add('label_not_8bit', seg_path, vmax)
            lbl = lbl.astype(np.uint8)
        raw = np.bincount(lbl.ravel(), minlength=256)
        eff = np.bincount(lut, weights=raw, minlength=256).astype(np.int64)
        raw_total += raw
        eff_total += eff
        per_file_eff.append((seg_path, raw, eff))

    def files_finding(code, level, text, fmt):
        items = col.get(code)
        if items:
            F.append(
                Finding(
                    level, code,
                    text.format(n=len(items)) +
                    _name_files([fmt(p, d) for p, d in items]),
                    [p for p, _ in items]))

    files_finding('unreadable', 'error', '{n} file(s) cannot be read: ',
                  lambda p, d: f'{p} [{d}]')
    if col.get('unreadable'):
        F[-1].message += ('. Re-copy or re-export them (a truncated '
                          'download/copy is the usual cause), or remove '
                          'them from the split.')
    files_finding(
        'size_mismatch', 'error',
        '{n} label(s) differ in size from their image (the crop would '
        'misalign labels and pixels): ',
        lambda p, d: f'{p} is {d[2][1]}x{d[2][0]} but {d[0]} is '
        f'{d[1][1]}x{d[1][0]} (WxH)')
    if col.get('size_mismatch'):
        F[-1].message += ('. Labels must have exactly the image size; '
                          'export them again at full resolution (resize '
                          'with nearest-neighbour if you must).')
    files_finding('colour_label', 'error',
                  '{n} label file(s) are colour (3-channel) images: ',
                  lambda p, d: f'{p} {tuple(d)}')
    if col.get('colour_label'):
        F[-1].message += ('. Labels must be single-channel PNGs whose '
                          'pixel value is the class index (a palette PNG '
                          'is fine); convert colour masks to indices with '
                          'your palette.')
    files_finding(
        'label_not_8bit', 'error',
        '{n} label file(s) hold values above 255, which MMSegmentation '
        'reads as uint8 (they wrap around): ', lambda p, d: f'{p} (max {d})')
    if col.get('label_not_8bit'):
        F[-1].message += ('. Store labels as 8-bit PNGs with values '
                          f'0..{max(n_cls - 1, 0)} and 255 for ignored '
                          'pixels.')

    if per_file_eff:
        _value_findings(report, per_file_eff, raw_total, eff_total, n_cls,
                        ignore, reduce, seg_suffix, ds, classes)
        total = eff_total.sum()
        if total:
            report.label_fractions = {
                int(v): float(eff_total[v]) / total
                for v in np.nonzero(eff_total)[0]
            }
    return report


def _value_findings(report, per_file, raw_total, eff_total, n_cls, ignore,
                    reduce, seg_suffix, ds, classes):
    F = report.findings
    total = int(raw_total.sum())
    if total == 0:
        return
    raw_vals = set(np.nonzero(raw_total)[0].tolist())
    valid = set(range(n_cls)) | {ignore}
    bad_files = []
    for path, raw, eff in per_file:
        bad = sorted(set(np.nonzero(eff)[0].tolist()) - valid)
        if bad:
            bad_files.append((path, bad))
    bad_values = sorted({v for _, vs in bad_files for v in vs})
    is_city = type(ds).__name__ == 'CityscapesDataset' or n_cls == 19
    named = '; '.join(f'{p} has {vs[:8]}{"..." if len(vs) > 8 else ""}'
                      for p, vs in bad_files[:MAX_NAMED])
    if len(bad_files) > MAX_NAMED:
        named += f' (and {len(bad_files) - MAX_NAMED} more files)'
    if bad_files:
        head = (f'{len(bad_files)} of {len(per_file)} decoded label files '
                f'hold values outside [0, {n_cls}) that are not the ignore '
                f'index {ignore} (values {bad_values[:12]}'
                f'{"..." if len(bad_values) > 12 else ""}): {named}. ')
        if seg_suffix and 'labelIds' in seg_suffix and \
                'TrainIds' not in seg_suffix:
            why = ('These are Cityscapes labelIds files (seg_map_suffix='
                   f'{seg_suffix!r}): ids 0-33, e.g. road=7, car=26. '
                   'Training needs labelTrainIds (0-18, 255 = ignore): set '
                   "seg_map_suffix='_gtFine_labelTrainIds.png' and create "
                   'the files with `python -m cityscapesscripts.preparation.'
                   'createTrainIdLabelImgs` (CITYSCAPES_DATASET=<data_root>) '
                   "or MMSegmentation's tools/dataset_converters/"
                   'cityscapes.py.')
            code = 'cityscapes_label_ids'
        elif is_city and max(raw_vals - {ignore}, default=0) <= 33 and \
                raw_vals & {v for v in CITYSCAPES_LABEL_IDS.values()
                            if v >= 19}:
            why = ('The values look like Cityscapes labelIds (0-33; road=7, '
                   'building=11, sky=23, person=24, car=26) where '
                   'labelTrainIds (0-18, 255 = ignore) are expected: '
                   'convert the labels with `python -m cityscapesscripts.'
                   'preparation.createTrainIdLabelImgs` and point '
                   "seg_map_suffix at '_gtFine_labelTrainIds.png'.")
            code = 'cityscapes_label_ids'
        elif seg_suffix.lower().endswith(('.jpg', '.jpeg')):
            why = (f'The labels are JPEG files ({seg_suffix}): lossy '
                   'compression changes label values near edges. Save '
                   'labels as PNG and set seg_map_suffix accordingly.')
            code = 'lossy_labels'
        elif not reduce and 0 in raw_vals and ignore not in raw_vals and \
                bad_values == [n_cls]:
            why = (f'The labels look 1-based with 0 = "other/unlabelled" '
                   f'(ADE20K style: values 0..{n_cls}, no {ignore}): set '
                   'reduce_zero_label=True in the dataset config (train and '
                   f'val) so 0 is ignored and 1..{n_cls} become '
                   f'0..{n_cls - 1}.')
            code = 'reduce_zero_label_needed'
        else:
            why = (f'The model has num_classes={n_cls}, so labels must be '
                   f'0..{n_cls - 1} (class index) or {ignore} (ignored). '
                   'Remap the label files, or set num_classes and the '
                   "dataset's metainfo classes to match the data.")
            code = 'label_out_of_range'
            if reduce:
                why += (' reduce_zero_label=True subtracts 1 from every '
                        'value first.')
        F.append(Finding('error', code, head + why, [p for p, _ in bad_files]))

    # reduce_zero_label on data that is already 0-based
    if reduce and ignore in raw_vals and \
            raw_total[0] / total >= ZERO_CLASS_MIN and \
            raw_total[ignore] / total >= IGNORE_PRESENT_MIN and \
            max(raw_vals - {ignore}) <= n_cls - 1:
        F.append(
            Finding(
                'warning', 'reduce_zero_label_on_zero_based',
                'reduce_zero_label=True, but the labels look 0-based: they '
                f'already use {ignore} for ignored pixels '
                f'({100 * raw_total[ignore] / total:.1f}%) and value 0 '
                f'covers {100 * raw_total[0] / total:.1f}% of the pixels '
                f'like a real class (values seen: {sorted(raw_vals)[:12]}). '
                'With reduce_zero_label=True every 0 pixel is ignored and '
                'class k is trained as k-1. Set reduce_zero_label=False '
                '(dataset and LoadAnnotations) unless 0 really means '
                '"unlabelled".', [p for p, _, _ in per_file[:MAX_NAMED]]))

    labelled = int(eff_total.sum() - eff_total[ignore])
    ign_frac = eff_total[ignore] / max(int(eff_total.sum()), 1)
    if not reduce and n_cls == 2 and ignore in raw_vals and \
            raw_vals <= {0, ignore}:
        F.append(
            Finding(
                'error', 'binary_mask_255', f'the masks are binary 0/{ignore} '
                f'({100 * raw_total[ignore] / total:.1f}% {ignore}) but '
                f'{ignore} is the ignore index, so the foreground is never '
                'trained and every labelled pixel is class 0: the log shows '
                '"loss_ce ~0, accuracy 100" and the foreground IoU stays 0. '
                'Save the masks with values 0/1 (e.g. mask // 255).',
                [p for p, _, _ in per_file[:MAX_NAMED]]))
    elif ign_frac >= MOSTLY_IGNORED:
        if reduce and raw_vals <= {0, 1}:
            why = ('reduce_zero_label=True turns the 0 pixels of these 0/1 '
                   'masks into ignore. Set reduce_zero_label=False.')
        else:
            why = ('Check reduce_zero_label, label_map/metainfo classes and '
                   'the label id space (raw values seen: '
                   f'{sorted(raw_vals)[:12]}).')
        F.append(
            Finding(
                'error', 'mostly_ignored',
                f'{100 * ign_frac:.1f}% of the pixels in {len(per_file)} '
                f'decoded label files are the ignore index {ignore} after '
                f'reduce_zero_label={reduce}: the loss sees almost nothing '
                '(symptoms: loss_ce ~0 and accuracy 100 in the log, mIoU '
                '~0). ' + why, [p for p, _, _ in per_file[:MAX_NAMED]]))
    else:
        all_ign = [
            p for p, _, eff in per_file
            if eff.sum() and eff[ignore] == eff.sum()
        ]
        if all_ign:
            F.append(
                Finding(
                    'warning', 'fully_ignored_files',
                    f'{len(all_ign)} label file(s) are entirely the ignore '
                    f'index {ignore}: ' + _name_files(all_ign) +
                    '. They contribute nothing to training; check them.',
                    all_ign))
        present = np.nonzero(np.where(np.arange(256) == ignore, 0,
                                      eff_total))[0]
        if labelled and len(present) == 1 and n_cls > 1 and \
                len(per_file) > 1:
            c = int(present[0])
            name = classes[c] if c < len(classes) else c
            F.append(
                Finding(
                    'warning', 'single_class',
                    f'every labelled pixel in {len(per_file)} decoded label '
                    f'files is class {c} ({name}): the model cannot learn '
                    'the other classes and "accuracy 100" means nothing. '
                    'Check the label values and reduce_zero_label.',
                    [p for p, _, _ in per_file[:MAX_NAMED]]))


def build_split_dataset(cfg, split: str = 'train'):
    """Build the dataset of ``cfg.<split>_dataloader`` (real mmseg class).

    Raises:
        DatasetCheckError: the split is not configured or its image folder /
            split file does not exist (the message names it).
    """
    from mmengine.registry import init_default_scope
    from mmseg.registry import DATASETS

    from ..compat.errors import DatasetCheckError
    key = f'{split}_dataloader'
    loader = cfg.get(key)
    if not loader or not loader.get('dataset'):
        raise DatasetCheckError(f'the config has no {key}.dataset; choose '
                                'another --split (train, val or test).')
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    ds_cfg = loader['dataset']
    for leaf in _leaf_cfgs(ds_cfg):
        _check_paths(leaf, split)
    return DATASETS.build(ds_cfg)


def _leaf_cfgs(ds_cfg) -> list:
    if 'datasets' in ds_cfg:
        out = []
        for d in ds_cfg['datasets']:
            out += _leaf_cfgs(d)
        return out
    if 'dataset' in ds_cfg:
        return _leaf_cfgs(ds_cfg['dataset'])
    return [ds_cfg]


def _has_file_with_suffix(directory: str, suffix: str) -> bool:
    for _, _, files in os.walk(directory):
        if any(f.endswith(suffix) for f in files):
            return True
    return False


def _check_paths(ds_cfg, split):
    from ..compat.errors import DatasetCheckError
    root = ds_cfg.get('data_root') or ''
    if '://' in root:
        return  # remote storage: the dataset class reports it
    if root and not osp.isdir(root):
        raise DatasetCheckError(
            f'data_root of the {split} dataset not found: {root} (resolved '
            f'to {osp.abspath(root)}). Put the data there (see '
            'docs/dataset_prepare.md) or pass --cfg-options '
            f'{split}_dataloader.dataset.data_root=<your path>.')
    prefix = ds_cfg.get('data_prefix', {}) or {}
    for what in ('img_path', 'seg_map_path'):
        sub = prefix.get(what)
        if sub:
            path = osp.join(root, sub)
            if not osp.isdir(path):
                raise DatasetCheckError(
                    f'{what} folder of the {split} dataset not found: {path}'
                    f' (data_root={root!r}, data_prefix.{what}={sub!r}). '
                    'Fix data_prefix or the folder layout (see '
                    'docs/dataset_prepare.md).')
    ann = ds_cfg.get('ann_file')
    if ann:
        path = ann if osp.isabs(ann) else osp.join(root, ann)
        if not osp.exists(path):
            raise DatasetCheckError(
                f'split file (ann_file) of the {split} dataset not found: '
                f'{path}.')
        return
    img_dir = osp.join(root, prefix.get('img_path') or '')
    suffix = ds_cfg.get('img_suffix')
    if suffix is None:
        from mmseg.registry import DATASETS
        cls = DATASETS.get(ds_cfg.get('type', '')) if isinstance(
            ds_cfg.get('type'), str) else ds_cfg.get('type')
        try:
            suffix = inspect.signature(
                cls.__init__).parameters['img_suffix'].default
        except (AttributeError, KeyError, TypeError, ValueError):
            suffix = None
    if isinstance(suffix, str) and osp.isdir(img_dir) and \
            not _has_file_with_suffix(img_dir, suffix):
        raise DatasetCheckError(
            f'no images for the {split} dataset: {img_dir} has no file '
            f'ending in {suffix!r}. Check img_suffix and data_prefix.'
            'img_path (see docs/dataset_prepare.md), or generate demo data '
            'with mmseg_sctnet.datasets.make_cityscapes.')


def check_data_paths(cfg, splits: Sequence[str] = ('train', 'val')) -> None:
    """Fail early, with a clear message, when a split's data root, image /
    label folder or split file is missing or holds no image.

    Meant to run before the Runner builds the datasets (MMEngine would
    report an empty folder as "need at least one array to concatenate").
    Splits that are not configured are skipped.

    Raises:
        DatasetCheckError: naming the missing path and the fix.
    """
    for split in splits:
        loader = cfg.get(f'{split}_dataloader')
        if not loader or not loader.get('dataset'):
            continue
        for leaf in _leaf_cfgs(loader['dataset']):
            _check_paths(leaf, split)


def check_config(cfg,
                 split: str = 'train',
                 max_files: Optional[int] = None,
                 seed: int = 0,
                 progress: bool = False) -> DatasetReport:
    """Build the ``split`` dataset of ``cfg`` and :func:`check_dataset` it,
    with ``num_classes``/``ignore_index`` from ``cfg.model.decode_head``."""
    dataset = build_split_dataset(cfg, split)
    head = cfg.get('model', {}).get('decode_head', {}) or {}
    if isinstance(head, (list, tuple)):
        head = head[-1]
    return check_dataset(
        dataset,
        num_classes=head.get('num_classes'),
        ignore_index=head.get('ignore_index', None),
        max_files=max_files,
        seed=seed,
        split=split,
        progress=progress)
