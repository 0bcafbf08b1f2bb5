"""Procedural street scenes written in the real dataset layouts.

No dataset can be downloaded on CI machines, so the demo and the tests
generate small datasets that the *real* MMSegmentation dataset classes and
pipelines read: Cityscapes (``leftImg8bit``/``gtFine`` with
``*_gtFine_labelTrainIds.png``), ADE20K (``images``/``annotations``, 0 =
"other"), COCO-Stuff-10K (``images``/``annotations`` with
``*_labelTrainIds.png``, 0 = unlabeled) and a plain custom folder layout.

A scene has sky, buildings, road, sidewalk, vegetation, poles, cars and
people, each class with its own colour family and texture, random geometry,
a fixed seed per image, and a thin band of ignored pixels (255) on object
borders as in real annotations. Everything is deterministic given ``seed``.

The ``'context'`` variant (:func:`render_context_scene`, e.g.
``make_cityscapes(root, scenes='context')``) is the same street with one
thing changed: cars and people are drawn alike, and only the sky, far above
them, tells which they are (blue: cars, orange: people) -- a pixel's class
that needs long-range context.
"""
import os
import os.path as osp
from typing import Dict, Optional, Sequence, Tuple

import cv2
import numpy as np

# Street classes drawn by render_scene.
CLASSES_STREET = ('road', 'sidewalk', 'building', 'pole', 'vegetation', 'sky',
                  'person', 'car')
# The label each on-disk format gives a street class: Cityscapes trainId,
# ADE20K value (1-based; 0 = other), COCO-Stuff-10K labelTrainId (0 =
# unlabeled, class k of the 171 is k + 1).
_FORMAT_IDS = dict(
    road=(0, 7, 149),
    sidewalk=(1, 12, 140),
    building=(2, 2, 96),
    pole=(5, 94, 1 + 114),
    vegetation=(8, 5, 169),
    sky=(10, 3, 157),
    person=(11, 13, 1),
    car=(13, 21, 3))
CITYSCAPES_TRAIN_ID = {c: ids[0] for c, ids in _FORMAT_IDS.items()}
ADE20K_ID = {c: ids[1] for c, ids in _FORMAT_IDS.items()}
COCO_STUFF_ID = {c: ids[2] for c, ids in _FORMAT_IDS.items()}

_COLOURS = dict(
    road=(90, 90, 95),
    sidewalk=(170, 150, 160),
    building=(120, 80, 60),
    pole=(200, 200, 60),
    vegetation=(40, 140, 40),
    sky=(210, 170, 110),  # BGR: light blue
    person=(60, 30, 200),
    car=(160, 40, 30))
_LOCAL = {name: i for i, name in enumerate(CLASSES_STREET)}

#: scene generators of :func:`render_scene`
SCENES = ('street', 'context')
#: ``'context'`` scenes: the sky's two tints, and the class of the road
#: users under each
CONTEXT_CUES = ('day', 'dusk')
CONTEXT_CLASS = dict(day='car', dusk='person')
#: ``'context'`` scenes: no road-user pixel is closer than this fraction of
#: the image height to a sky pixel (rows)
CONTEXT_GAP = 0.25
_SKY = dict(day=_COLOURS['sky'], dusk=(70, 140, 230))  # BGR: orange
#: road users' colours (BGR), drawn independently of their class
ROAD_USER_COLOURS = ((160, 40, 30), (60, 30, 200), (50, 50, 50),
                     (200, 200, 200), (40, 160, 200), (140, 90, 160))
_ROAD_USER = 20  # layout ids of road users: 20, 21, ... (not labels)


def _texture(rng, h, w, colour, amp):
    noise = rng.normal(0, amp, (h // 4 + 1, w // 4 + 1, 3))
    noise = cv2.resize(noise, (w, h), interpolation=cv2.INTER_LINEAR)
    return np.clip(np.asarray(colour, np.float32) + noise, 0, 255)


def _street_layout(rng, label: np.ndarray, horizon: int) -> None:
    """Sky, road, sidewalks, buildings, tree crowns and poles (in place)."""
    h, w = label.shape
    label[:horizon] = _LOCAL['sky']
    label[horizon:] = _LOCAL['road']
    # sidewalks: wedges from the horizon to the bottom corners
    vp = int(w * rng.uniform(0.35, 0.65))
    for side in (0, 1):
        xb = 0 if side == 0 else w - 1
        xw = int(w * rng.uniform(0.0, 0.15))
        pts = np.array([[vp, horizon], [xb, horizon],
                        [xb, h - 1], [xb + (xw if side == 0 else -xw), h - 1]])
        cv2.fillPoly(label, [pts.astype(np.int32)], int(_LOCAL['sidewalk']))
    # buildings along the horizon
    x = 0
    while x < w:
        bw = int(w * rng.uniform(0.08, 0.22))
        top = int(horizon * rng.uniform(0.05, 0.7))
        if rng.rand() < 0.8:
            label[top:horizon + 2, x:x + bw] = _LOCAL['building']
        x += bw
    # trees: trunks hidden, round crowns
    for _ in range(rng.randint(1, 4)):
        cx, cy = rng.randint(0, w), int(horizon * rng.uniform(0.4, 1.0))
        r = int(h * rng.uniform(0.06, 0.14))
        cv2.circle(label, (cx, cy), r, int(_LOCAL['vegetation']), -1)
    # poles
    for _ in range(rng.randint(1, 4)):
        px = rng.randint(0, w)
        pw = max(3, int(w * rng.uniform(0.015, 0.03)))
        label[int(horizon * rng.uniform(0.2, 0.6)):int(h * rng.uniform(
            0.65, 0.9)), px:px + pw] = _LOCAL['pole']


def _finish(rng, img: np.ndarray, label: np.ndarray,
            ignore_border: int) -> Tuple[np.ndarray, np.ndarray]:
    """Global illumination, sensor noise and the ignored border band."""
    gain = rng.uniform(0.75, 1.25)  # global illumination
    img = np.clip(img * gain + rng.normal(0, 3, img.shape), 0, 255)
    if ignore_border > 0:
        edges = cv2.morphologyEx(label, cv2.MORPH_GRADIENT,
                                 np.ones((2 * ignore_border + 1, ) * 2,
                                         np.uint8)) > 0
        label = label.copy()
        label[edges] = 255
    return img.astype(np.uint8), label


def render_scene(seed: int,
                 size: Tuple[int, int] = (128, 256),
                 ignore_border: int = 1,
                 scenes: str = 'street',
                 cue: Optional[str] = None) -> Tuple[np.ndarray, np.ndarray]:
    """One procedural street scene.

    Args:
        seed: random seed of this image.
        size: ``(H, W)``.
        ignore_border: width in pixels of the 255 band drawn on object
            borders (0 disables it).
        scenes: ``'street'`` (every class has its own colour and texture)
            or ``'context'`` (:func:`render_context_scene`: cars and people
            look the same; the sky's tint tells which they are).
        cue: ``'context'`` scenes only: force the sky (``'day'`` or
            ``'dusk'``) instead of drawing it; everything else in the image
            stays the same.

    Returns:
        ``(image, label)``: BGR uint8 ``[H, W, 3]`` and uint8 ``[H, W]`` with
        values ``0..7`` (index into :data:`CLASSES_STREET`) or 255.
    """
    if scenes == 'context':
        return render_context_scene(seed, size, ignore_border, cue)
    if scenes != 'street':
        raise ValueError(f'scenes must be one of {SCENES}, got {scenes!r}')
    if cue is not None:
        raise ValueError('cue is for scenes=\'context\' only')
    rng = np.random.RandomState(seed)
    h, w = size
    label = np.zeros((h, w), np.uint8)
    horizon = int(h * rng.uniform(0.35, 0.55))
    _street_layout(rng, label, horizon)
    # cars on the road, people on the sidewalks, farther = smaller
    for _ in range(rng.randint(1, 4)):
        cy = int(rng.uniform(horizon + 0.1 * h, h * 0.95))
        s = (cy - horizon) / max(1, h - horizon)
        cw, ch = int(w * 0.25 * s + 6), int(h * 0.18 * s + 4)
        cx = rng.randint(0, max(1, w - cw))
        label[cy - ch:cy, cx:cx + cw] = _LOCAL['car']
    for _ in range(rng.randint(1, 5)):
        cy = int(rng.uniform(horizon + 0.05 * h, h * 0.98))
        s = (cy - horizon) / max(1, h - horizon)
        pw, ph = int(w * 0.03 * s + 2), int(h * 0.3 * s + 5)
        cx = rng.randint(0, max(1, w - pw))
        cv2.ellipse(label, (cx, cy - ph // 2), (max(1, pw), max(2, ph // 2)),
                    0, 0, 360, int(_LOCAL['person']), -1)

    img = np.zeros((h, w, 3), np.float32)
    for name, cid in _LOCAL.items():
        mask = label == cid
        if mask.any():
            amp = 6 if name in ('sky', 'road') else 14
            img[mask] = _texture(rng, h, w, _COLOURS[name], amp)[mask]
    return _finish(rng, img, label, ignore_border)


def render_context_scene(seed: int,
                         size: Tuple[int, int] = (128, 256),
                         ignore_border: int = 1,
                         cue: Optional[str] = None
                         ) -> Tuple[np.ndarray, np.ndarray]:
    """A street scene whose cars and people are told apart only by a cue
    far away from them: the sky.

    The layout is the street scene's (sky, buildings, road, sidewalks,
    tree crowns, poles), with 2 to 5 *road users*: boxes, wide or tall
    (drawn independently of their class), each in a colour drawn from
    :data:`ROAD_USER_COLOURS` with the same texture, anywhere on the ground
    at least :data:`CONTEXT_GAP` x H rows below the horizon. The sky is
    blue (``'day'``) or orange (``'dusk'``), each with probability 1/2; the
    road users are labelled :data:`CONTEXT_CLASS` of the sky: ``car`` by
    day, ``person`` at dusk. The cue is drawn first and everything else
    from the same random stream, so the two versions of a seed (``cue``
    forced) differ only in the sky's pixels and in the road users' labels,
    and no road-user pixel has a sky pixel within ``CONTEXT_GAP`` x H rows:
    a model that sees less than that around a pixel cannot do better than
    chance on road users.

    Returns:
        ``(image, label)`` as :func:`render_scene`.
    """
    rng = np.random.RandomState(seed)
    h, w = size
    drawn = CONTEXT_CUES[int(rng.rand() < 0.5)]
    if cue is None:
        cue = drawn
    elif cue not in CONTEXT_CUES:
        raise ValueError(f'cue must be one of {CONTEXT_CUES}, got {cue!r}')
    layout = np.zeros((h, w), np.uint8)
    horizon = int(h * rng.uniform(0.3, 0.45))
    _street_layout(rng, layout, horizon)
    top_min = horizon + int(np.ceil(CONTEXT_GAP * h))
    users = []
    for k in range(rng.randint(2, 6)):
        cy = int(rng.uniform(top_min + 4, h))
        s = (cy - horizon) / max(1, h - horizon)
        if rng.rand() < 0.5:  # wide
            bw, bh = int(w * 0.2 * s + 6), int(h * 0.18 * s + 4)
        else:  # tall
            bw, bh = int(w * 0.04 * s + 3), int(h * 0.3 * s + 5)
        cx = rng.randint(0, max(1, w - bw))
        top = max(top_min, cy - bh)
        layout[top:cy, cx:cx + bw] = _ROAD_USER + k
        users.append(ROAD_USER_COLOURS[rng.randint(len(ROAD_USER_COLOURS))])

    img = np.zeros((h, w, 3), np.float32)
    for name, cid in _LOCAL.items():
        mask = layout == cid
        if mask.any():
            amp = 6 if name in ('sky', 'road') else 14
            colour = _SKY[cue] if name == 'sky' else _COLOURS[name]
            img[mask] = _texture(rng, h, w, colour, amp)[mask]
    for k, colour in enumerate(users):
        mask = layout == _ROAD_USER + k
        if mask.any():
            img[mask] = _texture(rng, h, w, colour, 14)[mask]
    # borders from the layout (each road user its own object), then labels
    img, layout = _finish(rng, img, layout, ignore_border)
    label = layout.copy()
    label[(layout >= _ROAD_USER) & (layout != 255)] = \
        _LOCAL[CONTEXT_CLASS[cue]]
    return img, label


def _remap(label: np.ndarray, table: Dict[str, int], void: int) -> np.ndarray:
    out = np.full(label.shape, void, np.uint8)
    for name, cid in _LOCAL.items():
        out[label == cid] = table[name]
    return out


def _write_split(n, seed, size, write, scenes='street'):
    for i in range(n):
        img, label = render_scene(seed * 100003 + i, size, scenes=scenes)
        write(i, img, label)


def _imwrite(path, arr):
    os.makedirs(osp.dirname(path), exist_ok=True)
    if not cv2.imwrite(path, arr):
        raise IOError(f'could not write {path}')


def make_cityscapes(root: str,
                    n_train: int = 8,
                    n_val: int = 4,
                    size: Tuple[int, int] = (128, 256),
                    seed: int = 0,
                    cities: Sequence[str] = ('aachen', 'bremen'),
                    scenes: str = 'street',
                    n_test: int = 0) -> str:
    """Cityscapes layout with ``*_gtFine_labelTrainIds.png`` (255 = void).

    ``root/leftImg8bit/{train,val}/<city>/<city>_000000_0000NN_leftImg8bit.png``
    and the matching ``gtFine`` files (``labelTrainIds`` and ``labelIds``).
    ``n_test`` images go to ``leftImg8bit/test`` without any label file
    (what the Cityscapes test server's split looks like to a user).
    ``scenes``: ``'street'`` or ``'context'`` (:func:`render_scene`).
    """
    if scenes not in SCENES:
        raise ValueError(f'scenes must be one of {SCENES}, got {scenes!r}')
    # trainId -> Cityscapes labelId, for the labelIds files real data has
    train_to_id = {0: 7, 1: 8, 2: 11, 5: 17, 8: 21, 10: 23, 11: 24, 13: 26}
    for split, n, s in (('train', n_train, seed), ('val', n_val, seed + 1)):

        def write(i, img, label, split=split):
            city = cities[i % len(cities)]
            stem = f'{city}_{i // len(cities):06d}_{i:06d}'
            _imwrite(
                osp.join(root, 'leftImg8bit', split, city,
                         f'{stem}_leftImg8bit.png'), img)
            train_ids = _remap(label, CITYSCAPES_TRAIN_ID, 255)
            _imwrite(
                osp.join(root, 'gtFine', split, city,
                         f'{stem}_gtFine_labelTrainIds.png'), train_ids)
            ids = np.zeros_like(train_ids)
            for t, lid in train_to_id.items():
                ids[train_ids == t] = lid
            _imwrite(
                osp.join(root, 'gtFine', split, city,
                         f'{stem}_gtFine_labelIds.png'), ids)

        _write_split(n, s, size, write, scenes)

    def write_test(i, img, label):
        city = cities[i % len(cities)]
        stem = f'{city}_{i // len(cities):06d}_{i:06d}'
        _imwrite(
            osp.join(root, 'leftImg8bit', 'test', city,
                     f'{stem}_leftImg8bit.png'), img)

    _write_split(n_test, seed + 2, size, write_test, scenes)
    return root


def _write_layout(root: str, splits: Sequence[Tuple[str, int]], stem,
                  ann_suffix: str, table: Dict[str, int], void: int,
                  size: Tuple[int, int], seed: int,
                  img_suffix: str = '.jpg', img_dir: str = 'images',
                  ann_dir: str = 'annotations') -> str:
    """``{img_dir,ann_dir}/<split>/<stem(split, i)><suffix>`` for each
    ``(split, number of images)``; split ``k`` drawn with ``seed + k``,
    labels remapped with ``table`` (``void`` elsewhere)."""
    for k, (split, n) in enumerate(splits):

        def write(i, img, label, split=split):
            name = stem(split, i)
            _imwrite(osp.join(root, img_dir, split, name + img_suffix), img)
            _imwrite(osp.join(root, ann_dir, split, name + ann_suffix),
                     _remap(label, table, void))

        _write_split(n, seed + k, size, write)
    return root


def make_ade20k(root: str, n_train: int = 8, n_val: int = 4,
                size: Tuple[int, int] = (128, 128), seed: int = 0) -> str:
    """ADE20K layout: ``images/{training,validation}/*.jpg`` and
    ``annotations/.../*.png`` with values 1..150 and 0 = other."""
    prefix = dict(training='ADE_train', validation='ADE_val')
    return _write_layout(root, (('training', n_train), ('validation', n_val)),
                         lambda split, i: f'{prefix[split]}_{i:08d}', '.png',
                         ADE20K_ID, 0, size, seed)


def make_coco_stuff10k(root: str, n_train: int = 8, n_val: int = 4,
                       size: Tuple[int, int] = (128, 128),
                       seed: int = 0) -> str:
    """COCO-Stuff-10K layout after MMSegmentation's conversion:
    ``images/{train2014,test2014}/*.jpg`` and
    ``annotations/.../*_labelTrainIds.png`` (0 = unlabeled, 1..171)."""
    return _write_layout(root, (('train2014', n_train), ('test2014', n_val)),
                         lambda split, i: f'COCO_{split}_{i:012d}',
                         '_labelTrainIds.png', COCO_STUFF_ID, 0, size, seed)


def make_custom(root: str,
                classes: Sequence[str] = CLASSES_STREET,
                n_train: int = 8,
                n_val: int = 4,
                size: Tuple[int, int] = (128, 192),
                seed: int = 0,
                img_suffix: str = '.jpg',
                seg_map_suffix: str = '.png') -> str:
    """Plain folder layout: ``img_dir/{train,val}/*`` + ``ann_dir/...``.

    Label values are indices into ``classes`` (which must name the street
    classes drawn, in any order), 255 = ignore.
    """
    missing = set(CLASSES_STREET) - set(classes)
    if missing:
        raise ValueError(f'classes must include {sorted(missing)}')
    table = {name: list(classes).index(name) for name in CLASSES_STREET}
    return _write_layout(root, (('train', n_train), ('val', n_val)),
                         lambda split, i: f'{split}_{i:05d}', seg_map_suffix,
                         table, 255, size, seed, img_suffix=img_suffix,
                         img_dir='img_dir', ann_dir='ann_dir')
