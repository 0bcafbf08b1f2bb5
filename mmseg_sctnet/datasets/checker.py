"""Find the data mistakes that make segmentation training fail silently.

Users of the original release lost days to data that *loads* but is wrong:
labels in the wrong id space gave "loss_ce 0, accuracy 100" and mIoU near 0
(its issues #24 and #35), and a missing label file crashes a run hours in.
:func:`check_dataset` inspects the real MMSegmentation dataset object a
config builds and reports, naming files and values and saying the fix.

The pixels are read by the dataset's own loading transforms
(``LoadImageFromFile`` and ``LoadAnnotations`` of its pipeline, with their
decoding backend, ``backend_args``, ``reduce_zero_label`` and the dataset's
``label_map``), so the checker sees exactly the label values the loss sees.
The raw values stored in a file (needed to diagnose an id space) come from
the same ``LoadAnnotations`` with ``reduce_zero_label`` and ``label_map``
off. What a decoded array cannot show is read from the file header: 16-bit
PNG labels (``LoadAnnotations`` casts them to uint8), lossy JPEG/WebP
labels, palette PNGs.

Each finding is one :class:`Rule` in :data:`RULES` (code, level, a small
check that returns the message with its fix; they are defined in
:mod:`mmseg_sctnet.datasets.check_rules`), run in this order:

errors
    ``num_classes_mismatch`` (model vs dataset classes),
    ``reduce_zero_label_conflict`` (dataset vs ``LoadAnnotations``),
    ``empty_split``, ``missing_label``, ``missing_image``, ``unreadable``,
    ``size_mismatch``, ``colour_label``, ``label_not_8bit``,
    ``lossy_labels``, label values outside ``[0, num_classes)`` other than
    the ignore index (``cityscapes_label_ids``: labelIds where labelTrainIds
    are expected; ``reduce_zero_label_needed``: 1-based labels with 0 =
    "other"; ``label_out_of_range`` otherwise), ``binary_mask_255`` and
    ``mostly_ignored`` (the split cannot train).
warnings
    ``reduce_zero_label_off`` (the dataset class expects it),
    ``label_without_image``, ``reduce_zero_label_on_zero_based``,
    ``fully_ignored_files``, ``single_class``.

The pairing rules look at every entry (file existence only); the pixel rules
load ``max_files`` entries (all when None). ``tools/check_dataset.py`` is the
command line; :class:`mmseg_sctnet.engine.DatasetCheckHook` runs a cheap
sample when training starts.
"""
import copy
import inspect
import os
import os.path as osp
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import mmcv
import numpy as np
from mmcv.transforms import LoadAnnotations as _LoadAnnotations
from mmcv.transforms import LoadImageFromFile
from mmengine import fileio
from mmengine.registry import init_default_scope
from mmengine.utils import track_iter_progress
from mmseg.datasets.transforms import LoadAnnotations
from mmseg.registry import DATASETS

from ..io.errors import DatasetCheckError
from .check_rules import CITYSCAPES_LABEL_IDS, MAX_NAMED, RULES, Rule

__all__ = [
    'Finding', 'DatasetReport', 'Rule', 'RULES', 'check_dataset',
    'check_config', 'build_split_dataset', 'check_data_paths',
    'unwrap_datasets', 'CITYSCAPES_LABEL_IDS'
]


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


# ------------------------------------------------------------------ loading
def _pipeline_transform(ds, base):
    """The first transform of the dataset's pipeline that is a ``base``."""
    pipeline = getattr(ds, 'pipeline', None)
    for t in getattr(pipeline, 'transforms', []) or []:
        if isinstance(t, base):
            return t
    return None


def _exists(path: str, backend_args) -> bool:
    if backend_args is None and '://' not in path:
        return osp.isfile(path)
    return fileio.exists(path, backend_args=backend_args)


def _file_head(path: str, backend_args, n: int = 32) -> bytes:
    if backend_args is None and '://' not in path:
        with open(path, 'rb') as f:
            return f.read(n)
    return fileio.get(path, backend_args=backend_args)[:n]


@dataclass
class _Header:
    """What the first bytes of a label file say about its format."""
    fmt: str = 'other'  # 'png', 'jpeg', 'webp-lossy', 'other'
    bit_depth: int = 8  # PNG only
    palette: bool = False  # PNG colour type 3

    @classmethod
    def parse(cls, head: bytes) -> '_Header':
        if head[:8] == b'\x89PNG\r\n\x1a\n' and head[12:16] == b'IHDR':
            return cls('png', head[24], head[25] == 3)
        if head[:3] == b'\xff\xd8\xff':
            return cls('jpeg')
        if head[:4] == b'RIFF' and head[8:16] == b'WEBPVP8 ':
            return cls('webp-lossy')
        return cls()


@dataclass
class _Sample:
    """One (image, label) entry as the dataset's transforms load it."""
    img_path: str
    seg_path: str
    img_shape: Optional[Tuple[int, int]] = None
    img_error: Optional[str] = None
    seg_shape: Optional[Tuple[int, ...]] = None  # gt_seg_map.shape
    seg_error: Optional[str] = None
    header: _Header = field(default_factory=_Header)
    max_stored: Optional[int] = None  # > 8-bit files: max value stored
    raw: Optional[np.ndarray] = None  # histogram of the stored values
    eff: Optional[np.ndarray] = None  # histogram of what the loss sees

    @property
    def lossy(self) -> bool:
        return self.header.fmt in ('jpeg', 'webp-lossy')

    @property
    def wraps(self) -> bool:
        return self.max_stored is not None and self.max_stored > 255

    @property
    def valued(self) -> bool:
        """The label values are meaningful for the value rules."""
        return self.eff is not None and not self.lossy and not self.wraps


def label_loader(ds):
    """The dataset's own ``LoadAnnotations``, reading labels as training
    does: a copy of its pipeline's (decoding backend, ``backend_args``), or
    the default one with the dataset's ``backend_args`` when the pipeline
    has none; ``reduce_zero_label`` as the dataset defines it. Call it on
    ``dict(ds.get_data_info(i), seg_fields=[])``: ``['gt_seg_map']`` holds
    the labels the loss sees (the dataset's ``label_map`` applied)."""
    ann = _pipeline_transform(ds, _LoadAnnotations)
    load = copy.deepcopy(ann) if ann is not None else \
        LoadAnnotations(backend_args=getattr(ds, 'backend_args', None))
    if hasattr(load, 'reduce_zero_label'):
        # on a conflict (reported by its rule) training would stop at the
        # first label; read the values as the dataset defines them
        load.reduce_zero_label = bool(getattr(ds, 'reduce_zero_label', False))
    return load


class _Loader:
    """The dataset's own ``LoadImageFromFile`` and ``LoadAnnotations``.

    Copies of the pipeline's transforms (they keep state), or the defaults
    with the dataset's ``backend_args`` when the pipeline has none (a test
    pipeline without labels). ``load_raw`` is the same ``LoadAnnotations``
    with ``reduce_zero_label`` off, given no ``label_map``: the stored
    values, decoded as training decodes them.
    """

    def __init__(self, ds):
        backend_args = getattr(ds, 'backend_args', None)
        img = _pipeline_transform(ds, LoadImageFromFile)
        ann = _pipeline_transform(ds, _LoadAnnotations)
        self.pipeline_reduce_zero_label = getattr(ann, 'reduce_zero_label',
                                                  None)
        self.load_img = copy.deepcopy(img) if img is not None else \
            LoadImageFromFile(backend_args=backend_args)
        self.load_ann = label_loader(ds)
        reduce = bool(getattr(ds, 'reduce_zero_label', False))
        self.load_raw = copy.deepcopy(self.load_ann)
        if hasattr(self.load_raw, 'reduce_zero_label'):
            self.load_raw.reduce_zero_label = False
        self.maps = reduce or bool(getattr(ds, 'label_map', None))

    def __call__(self, info: dict) -> _Sample:
        s = _Sample(info['img_path'], info['seg_map_path'])
        try:
            out = self.load_img(dict(info, seg_fields=[]))
            if out is None:  # ignore_empty=True
                raise ValueError('cannot be decoded')
            s.img_shape = tuple(out['img'].shape[:2])
        except Exception as err:  # noqa: BLE001 (any decoder failure)
            s.img_error = f'image ({err or type(err).__name__})'
        backend_args = getattr(self.load_ann, 'backend_args', None)
        try:
            s.header = _Header.parse(_file_head(s.seg_path, backend_args))
            seg = self.load_ann(dict(info, seg_fields=[]))['gt_seg_map']
        except Exception as err:  # noqa: BLE001
            s.seg_error = f'label ({err or type(err).__name__})'
            return s
        s.seg_shape = tuple(seg.shape)
        if seg.ndim != 2:
            return s
        if s.header.bit_depth > 8:
            s.max_stored = self._max_stored(s.seg_path, backend_args)
        s.eff = np.bincount(seg.ravel(), minlength=256)
        if self.maps:
            info = dict(info, reduce_zero_label=False, label_map=None)
            seg = self.load_raw(dict(info, seg_fields=[]))['gt_seg_map']
            s.raw = np.bincount(seg.ravel(), minlength=256)
        else:
            s.raw = s.eff
        return s

    def _max_stored(self, path, backend_args) -> int:
        """Largest value of a > 8-bit label file (before the uint8 cast)."""
        arr = mmcv.imfrombytes(
            fileio.get(path, backend_args=backend_args),
            flag='unchanged',
            backend=getattr(self.load_ann, 'imdecode_backend', 'pillow'))
        return int(np.asarray(arr).max())


class SplitData:
    """A leaf dataset being checked: its settings, entries and the loaded
    sample, with the statistics the value rules share."""

    def __init__(self, ds, num_classes, ignore_index, split):
        if hasattr(ds, 'full_init'):
            ds.full_init()  # a no-op when the dataset is initialised
        self.ds = ds
        self.name = type(ds).__name__
        self.split = split
        self.data_root = getattr(ds, 'data_root', None) or ''
        prefix = getattr(ds, 'data_prefix', {}) or {}
        self.img_dir = prefix.get('img_path') or ''
        self.ann_dir = prefix.get('seg_map_path')
        self.img_suffix = getattr(ds, 'img_suffix', '')
        self.seg_suffix = getattr(ds, 'seg_map_suffix', '')
        self.ann_file = getattr(ds, 'ann_file', '') or ''
        self.backend_args = getattr(ds, 'backend_args', None)
        self.classes = list(ds.metainfo.get('classes', []) or [])
        self.num_classes = num_classes  # the model's (None: not given)
        self.n_cls = num_classes if num_classes is not None else len(
            self.classes)
        self.ignore = ignore_index if ignore_index is not None else getattr(
            ds, 'ignore_index', 255)
        self.reduce = bool(getattr(ds, 'reduce_zero_label', False))
        self.loader = _Loader(ds)
        # (data_list is emptied when the dataset serialises it)
        self.entries = [ds.get_data_info(i) for i in range(len(ds))]
        self.missing_label = []  # (label, image)
        self.missing_image = []  # (image, label)
        for info in self.entries:
            img, seg = info.get('img_path'), info.get('seg_map_path')
            if img and not _exists(img, self.backend_args):
                self.missing_image.append((img, seg))
            if seg is not None and not _exists(seg, self.backend_args):
                self.missing_label.append((seg, img))
        self.samples: List[_Sample] = []

    def load(self, max_files, seed, progress):
        skip = {img for _, img in self.missing_label}
        skip |= {img for img, _ in self.missing_image}
        ok = [
            e for e in self.entries
            if e.get('seg_map_path') and e.get('img_path') not in skip
        ]
        if max_files is not None and len(ok) > max_files:
            rng = np.random.default_rng(seed)
            idx = np.sort(rng.choice(len(ok), max_files, replace=False))
            ok = [ok[i] for i in idx]
        if progress:
            ok = track_iter_progress(ok)
        self.samples = [self.loader(info) for info in ok]
        self.valued = [s for s in self.samples if s.valued]
        self.raw_total = sum((s.raw for s in self.valued),
                             np.zeros(256, np.int64))
        self.eff_total = sum((s.eff for s in self.valued),
                             np.zeros(256, np.int64))
        self.total = int(self.raw_total.sum())
        self.raw_vals = set(np.nonzero(self.raw_total)[0].tolist())
        valid = set(range(self.n_cls)) | {self.ignore}
        self.bad_files = []  # (label, values outside the classes)
        for s in self.valued:
            bad = sorted(set(np.nonzero(s.eff)[0].tolist()) - valid)
            if bad:
                self.bad_files.append((s.seg_path, bad))
        self.bad_values = sorted({v for _, vs in self.bad_files for v in vs})

    def first_files(self) -> List[str]:
        return [s.seg_path for s in self.valued[:MAX_NAMED]]


# ------------------------------------------------------------------ running
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
        max_files: load at most this many (image, label) pairs per leaf
            dataset, chosen with ``seed``; all when None. Existence of every
            file is checked regardless.
        seed: seed of the sample.
        split: name used in messages.
        progress: show a progress bar while loading.

    Returns:
        DatasetReport: the findings of :data:`RULES`.
    """
    reports = [
        _check_leaf(d, num_classes, ignore_index, max_files, seed, split,
                    progress) for d in unwrap_datasets(dataset)
    ]
    if len(reports) == 1:
        return reports[0]
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
    s = SplitData(ds, num_classes, ignore_index, split)
    report = DatasetReport(
        split=split,
        description=f'{s.name}, images {s.img_dir}, labels {s.ann_dir}',
        num_entries=len(s.entries))
    found = set()
    for stage in ('config', 'entries', 'files', 'values'):
        if stage == 'files':
            if not s.entries:
                break
            s.load(max_files, seed, progress)
            report.num_decoded = sum(x.seg_shape is not None
                                     for x in s.samples)
        for r in RULES:
            if r.stage != stage or found.intersection(r.unless):
                continue
            out = r.check(s)
            if out is not None:
                message, files = out
                report.findings.append(
                    Finding(r.level, r.code, message, list(files)))
                found.add(r.code)
    if s.entries and s.eff_total.sum():
        total = s.eff_total.sum()
        report.label_fractions = {
            int(v): float(s.eff_total[v]) / total
            for v in np.nonzero(s.eff_total)[0]
        }
    return report


def build_split_dataset(cfg, split: str = 'train'):
    """Build the dataset of ``cfg.<split>_dataloader`` (real mmseg class).

    The leaves are built with ``serialize_data=False``: MMEngine cannot
    serialise an empty list, and an empty split is a finding to report
    (``empty_split``), not a crash.

    Raises:
        DatasetCheckError: the split is not configured or its image folder /
            split file does not exist (the message names it).
    """

    key = f'{split}_dataloader'
    loader = cfg.get(key)
    if not loader or not loader.get('dataset'):
        raise DatasetCheckError(f'the config has no {key}.dataset; choose '
                                'another --split (train, val or test).')
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    ds_cfg = copy.deepcopy(loader['dataset'])
    for leaf in _leaf_cfgs(ds_cfg):
        _check_paths(leaf, split)
        leaf['serialize_data'] = False
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
