"""Class weights for the cross-entropy from the label frequencies of a
config's dataset (``tools/class_weights.py``).

The labels are read as training reads them: the split's dataset is built
with the config's real MMSegmentation class (its ``label_map`` for a class
subset, ``reduce_zero_label``) and every label file goes through the
dataset's own ``LoadAnnotations``
(:func:`mmseg_sctnet.datasets.checker.label_loader`); the random crops and
flips of the training pipeline are left out, so the counts are those of the
whole label maps. Pixels at the ignore index (255) count for nothing.

Methods (``f_c``: frequency of class ``c``):

* ``median``: median-frequency balancing (Eigen & Fergus, ICCV 2015),
  ``w_c = median(f) / f_c`` with ``f_c`` = pixels of ``c`` / labelled
  pixels of the images in which ``c`` occurs;
* ``enet``: ENet's ``w_c = 1 / ln(1.02 + p_c)`` (Paszke et al., 2016) with
  ``p_c`` = pixels of ``c`` / all labelled pixels.

By default the weights are scaled so that their mean over the labelled
pixels is 1 (``sum_c p_c w_c = 1``): the loss keeps its size and the
learning rate stays right; ``normalize=False`` gives the formulas' values.
A class with no pixel in the split gets weight 0 (no pixel carries it).

The printed ``--cfg-options`` and config lines put the weights into
``ClassWeightedCrossEntropyLoss`` (:mod:`mmseg_sctnet.models.losses`) of the
decode and auxiliary heads: MMSegmentation's own ``CrossEntropyLoss`` with
``class_weight`` fails on the first ignored label pixel.
"""
from dataclasses import dataclass, field
from typing import Dict, List, Optional

import numpy as np
from mmengine.utils import track_iter_progress

from ..io.config import load_config
from ..io.errors import ConfigError, DatasetCheckError
from .checker import build_split_dataset, label_loader, unwrap_datasets

__all__ = [
    'METHODS', 'WEIGHTED_CE', 'LabelCounts', 'count_labels', 'class_weights',
    'cfg_options_for', 'report_class_weights'
]

#: method -> one line saying what it computes
METHODS = {
    'median': 'median-frequency balancing (Eigen & Fergus 2015): '
    'w_c = median(f) / f_c, f_c = pixels of c / labelled pixels of the '
    'images containing c',
    'enet': "ENet's weighting (Paszke et al. 2016): w_c = 1 / ln(1.02 + "
    'p_c), p_c = pixels of c / all labelled pixels',
}


@dataclass
class LabelCounts:
    """Pixel counts of a split, as the loss sees its labels."""
    classes: List[str]
    pixels: np.ndarray  # [K] pixels of each class
    image_pixels: np.ndarray  # [K] labelled pixels of images holding c
    num_files: int = 0
    ignored: int = 0  # pixels at the ignore index
    bad: Dict[str, List[int]] = field(default_factory=dict)
    unreadable: Dict[str, str] = field(default_factory=dict)

    @property
    def labelled(self) -> int:
        return int(self.pixels.sum())


def count_labels(dataset, num_classes: int, ignore_index: int = 255,
                 progress: bool = False) -> LabelCounts:
    """Count the label pixels of every file of ``dataset`` (a built
    MMSegmentation dataset, wrappers unwrapped) with its own loading.

    Values outside ``[0, num_classes)`` other than ``ignore_index`` are
    collected in ``bad`` (file -> values), files that cannot be read in
    ``unreadable`` (file -> why); neither is counted.
    """
    leaves = unwrap_datasets(dataset)
    classes = list(leaves[0].metainfo.get('classes') or [])
    counts = LabelCounts(classes, np.zeros(num_classes, np.int64),
                         np.zeros(num_classes, np.int64))
    for ds in leaves:
        if hasattr(ds, 'full_init'):
            ds.full_init()
        load = label_loader(ds)
        infos = [ds.get_data_info(i) for i in range(len(ds))]
        if progress:
            infos = track_iter_progress(infos)
        for info in infos:
            if not info.get('seg_map_path'):
                continue
            try:
                seg = load(dict(info, seg_fields=[]))['gt_seg_map']
            except Exception as err:  # noqa: BLE001 (any decoder failure)
                counts.unreadable[info['seg_map_path']] = \
                    str(err) or type(err).__name__
                continue
            hist = np.bincount(np.asarray(seg).ravel(), minlength=256)
            counts.num_files += 1
            counts.ignored += int(hist[ignore_index]) \
                if ignore_index < len(hist) else 0
            outside = [v for v in np.nonzero(hist)[0].tolist()
                       if v >= num_classes and v != ignore_index]
            if outside:
                counts.bad[info['seg_map_path']] = outside
                continue
            own = hist[:num_classes]
            counts.pixels += own
            counts.image_pixels[own > 0] += int(own.sum())
    return counts


def class_weights(counts: LabelCounts, method: str = 'median',
                  normalize: bool = True) -> np.ndarray:
    """The weights of ``counts`` by ``method`` (see the module doc)."""
    if method not in METHODS:
        raise ValueError(f'unknown method {method!r}; one of {list(METHODS)}')
    present = counts.pixels > 0
    weights = np.zeros(len(counts.pixels), np.float64)
    p = counts.pixels / max(counts.labelled, 1)
    if method == 'median':
        f = counts.pixels[present] / counts.image_pixels[present]
        weights[present] = np.median(f) / f
    else:
        weights[present] = 1.0 / np.log(1.02 + p[present])
    if normalize:
        weights /= float((p * weights).sum())
    return weights


#: the loss that takes ``class_weight`` with ignored pixels
#: (:class:`mmseg_sctnet.models.losses.ClassWeightedCrossEntropyLoss`;
#: MMSegmentation's ``CrossEntropyLoss`` fails on them)
WEIGHTED_CE = 'ClassWeightedCrossEntropyLoss'


def _ce_keys(cfg) -> List[str]:
    """The dotted keys of every softmax cross-entropy loss of the decode
    head and the auxiliary head(s) of ``cfg.model``."""
    keys = []
    for head in ('decode_head', 'auxiliary_head'):
        h = cfg.model.get(head)
        items = list(enumerate(h)) if isinstance(h, (list, tuple)) else \
            [(None, h)]
        for i, one in items:
            if not isinstance(one, dict):
                continue
            prefix = f'model.{head}' + ('' if i is None else f'.{i}')
            loss = one.get('loss_decode')
            losses = list(enumerate(loss)) if isinstance(
                loss, (list, tuple)) else [(None, loss)]
            for j, ce in losses:
                if isinstance(ce, dict) and ce.get('type') in (
                        'CrossEntropyLoss', WEIGHTED_CE) and \
                        not ce.get('use_sigmoid'):
                    keys.append(prefix + '.loss_decode' +
                                ('' if j is None else f'.{j}'))
    return keys


def cfg_options_for(cfg, weights) -> str:
    """``--cfg-options`` that make the CE of the decode and auxiliary heads
    of ``cfg`` a :data:`WEIGHTED_CE` with ``weights``."""
    values = '[' + ','.join(f'{w:.4f}' for w in weights) + ']'
    return ' '.join(f'{k}.type={WEIGHTED_CE} {k}.class_weight={values}'
                    for k in _ce_keys(cfg))


def _table(counts: LabelCounts, weights: np.ndarray) -> str:
    total = max(counts.labelled, 1)
    names = counts.classes or [str(i) for i in range(len(weights))]
    width = max(len('class'), *(len(n) for n in names))
    lines = [f'{"class":<{width}}  {"pixels":>12}  {"frequency":>9}  '
             f'{"weight":>8}']
    for c, name in enumerate(names):
        n = int(counts.pixels[c])
        lines.append(f'{name:<{width}}  {n:>12,}  {100 * n / total:>8.3f}%  '
                     f'{weights[c]:>8.4f}' + ('' if n else '  (absent)'))
    return '\n'.join(lines)


def report_class_weights(config: str,
                         split: str = 'train',
                         method: str = 'median',
                         normalize: bool = True,
                         cfg_options: Optional[dict] = None,
                         progress: bool = True) -> dict:
    """The body of ``tools/class_weights.py``: count the labels of the
    ``split`` of ``config``, print every class's frequency and weight and
    the ``--cfg-options`` / config lines that use them. Reads only.

    Returns ``dict(classes, pixels, frequency, weights, cfg_options)``.

    Raises:
        DatasetCheckError: the split is missing, has no labels, no
            labelled pixel, or label values outside the classes.
        ConfigError: the config cannot be read, an unknown method, or the
            model and the dataset disagree on the number of classes.
    """
    if method not in METHODS:
        raise ConfigError(
            f'unknown --method {method!r}; choose one of {list(METHODS)}')
    cfg = load_config(config, cfg_options)
    head = cfg.model.get('decode_head') or {}
    if isinstance(head, (list, tuple)):
        head = head[-1]
    dataset = build_split_dataset(cfg, split)
    leaves = unwrap_datasets(dataset)
    classes = list(leaves[0].metainfo.get('classes') or [])
    num_classes = head.get('num_classes') or len(classes)
    if classes and num_classes != len(classes):
        raise ConfigError(
            f'{config}: the model predicts {num_classes} classes '
            f'(decode_head.num_classes) but the {split} dataset has '
            f'{len(classes)}; fix one of them (tools/check_dataset.py '
            f'{config} explains).')
    ignore = head.get('ignore_index', 255)
    if not any((getattr(d, 'data_prefix', {}) or {}).get('seg_map_path')
               or getattr(d, 'ann_file', None) for d in leaves):
        raise DatasetCheckError(
            f'the {split} split of {config} has no labels '
            '(data_prefix.seg_map_path); count another --split.')
    counts = count_labels(dataset, num_classes, ignore, progress)
    if counts.unreadable:
        first, why = next(iter(counts.unreadable.items()))
        raise DatasetCheckError(
            f'{len(counts.unreadable)} label file(s) of the {split} split '
            f'cannot be read, e.g. {first} ({why}). Run python '
            f'tools/check_dataset.py {config} --split {split}.')
    if counts.bad:
        first, values = next(iter(counts.bad.items()))
        raise DatasetCheckError(
            f'{len(counts.bad)} label file(s) of the {split} split hold '
            f'values outside [0, {num_classes}) other than the ignore index '
            f'{ignore}, e.g. {first}: {values}; the weights would be wrong. '
            f'Run python tools/check_dataset.py {config} --split {split}.')
    if not counts.labelled:
        raise DatasetCheckError(
            f'no labelled pixel in the {split} split of {config} '
            f'({counts.num_files} label files, every pixel at the ignore '
            f'index {ignore}).')
    weights = class_weights(counts, method, normalize)
    opts = cfg_options_for(cfg, weights)
    values = '[' + ', '.join(f'{w:.4f}' for w in weights) + ']'
    print(f'\n{config}, {split} split: {counts.num_files} label files, '
          f'{counts.labelled:,} labelled pixels, {counts.ignored:,} at the '
          f'ignore index {ignore} (not counted).')
    print(f'method: {METHODS[method]}' +
          ('; scaled so that the mean weight over the labelled pixels is 1.'
           if normalize else '; unscaled.'))
    print(_table(counts, weights))
    absent = [c for c, n in enumerate(counts.pixels) if not n]
    if absent:
        print(f'{len(absent)} class(es) have no pixel in this split: weight 0 '
              '(no pixel carries it).')
    if opts:
        more = ' (and your other --cfg-options)' if cfg_options else ''
        print(f'\nTrain with them{more}:\n  python tools/train.py {config} '
              f'--cfg-options {opts}')
    heads = [k.split('.')[1] for k in _ce_keys(cfg)]
    if heads and all(k == f'model.{h}.loss_decode'
                     for k, h in zip(_ce_keys(cfg), heads)):
        lines = ',\n    '.join(
            f"{h}=dict(loss_decode=dict(type='{WEIGHTED_CE}', "
            'class_weight=class_weight))' for h in heads)
        print('\nor in a config inheriting this one:\n'
              f'class_weight = {values}\nmodel = dict(\n    {lines})')
    freq = counts.pixels / counts.labelled
    return dict(classes=counts.classes, pixels=counts.pixels.tolist(),
                frequency=freq.tolist(), weights=weights.tolist(),
                method=method, normalize=normalize, cfg_options=opts)
