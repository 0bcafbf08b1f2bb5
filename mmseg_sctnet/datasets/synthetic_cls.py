"""Procedural classification images in the ImageNet folder layout.

A stand-in for ImageNet where none can be downloaded: a backbone can be
pretrained on it in minutes on a CPU with the ``configs/pretrain/`` recipe
(MMPretrain's ``ImageNet``/``CustomDataset`` read the folders), and the
tests use it for a few iterations.

Each image shows one object on a street-scene background
(:func:`~mmseg_sctnet.datasets.synthetic.render_scene`). The class is the
pair (shape, texture) of the object:

* shapes, drawn like the street scenes' objects: ``crown`` (round tree
  crown), ``car`` (wide box on two wheels), ``person`` (tall ellipse with a
  head), ``pole`` (thin vertical bar with a lamp), ``building`` (tall
  block), ``sign`` (triangle on a post);
* textures: ``smooth``, ``blotchy`` (low-frequency noise like
  vegetation), ``stripes`` (oriented bars), ``grid`` (window-like grid).

The object's colour is drawn from the street palette independently of the
class, and position, size, lighting and background vary per image, so a
classifier has to use shape and texture, not colour. Class ``k`` is
``(SHAPES[k % 6], TEXTURES[(k // 6 + k) % 4])``: every pair is distinct
for up to 24 classes, and from 7 classes on a shape occurs with two
textures (texture matters) and a texture with several shapes.
Everything is deterministic given ``seed``.
"""
import os
import os.path as osp
from typing import List, Tuple, Union

import cv2
import numpy as np

from .synthetic import _COLOURS, render_scene

__all__ = [
    'SHAPES', 'TEXTURES', 'class_names', 'render_object_image',
    'make_imagenet_layout'
]

SHAPES = ('crown', 'car', 'person', 'pole', 'building', 'sign')
TEXTURES = ('smooth', 'blotchy', 'stripes', 'grid')
MAX_CLASSES = len(SHAPES) * len(TEXTURES)


def _class_pair(k: int) -> Tuple[str, str]:
    return SHAPES[k % len(SHAPES)], TEXTURES[(k // len(SHAPES) + k) %
                                             len(TEXTURES)]


def class_names(n_classes: int) -> List[str]:
    """Folder names of the first ``n_classes`` classes:
    ``'<index>_<shape>_<texture>'`` (the index keeps the folder order, and
    so MMPretrain's label ids, equal to ``k``)."""
    if not 2 <= n_classes <= MAX_CLASSES:
        raise ValueError(f'n_classes must be in [2, {MAX_CLASSES}], got '
                         f'{n_classes}')
    return [f'{k:02d}_{"_".join(_class_pair(k))}' for k in range(n_classes)]


def _mask(shape: str, h: int, w: int, rng) -> np.ndarray:
    """uint8 mask of ``shape`` inside an ``h x w`` box."""
    m = np.zeros((h, w), np.uint8)
    if shape == 'crown':
        cv2.ellipse(m, (w // 2, h // 2), (w // 2 - 1, h // 2 - 1), 0, 0, 360,
                    1, -1)
    elif shape == 'car':
        body = int(h * 0.75)
        cv2.rectangle(m, (0, int(h * 0.15)), (w - 1, body), 1, -1)
        r = max(2, h // 5)
        for cx in (w // 4, 3 * w // 4):
            cv2.circle(m, (cx, min(h - r - 1, body)), r, 1, -1)
    elif shape == 'person':
        head = max(2, w // 3)
        cv2.circle(m, (w // 2, head), head, 1, -1)
        cv2.ellipse(m, (w // 2, (h + 2 * head) // 2),
                    (max(2, w // 2 - 1), max(2, (h - 2 * head) // 2)), 0, 0,
                    360, 1, -1)
    elif shape == 'pole':
        pw = max(2, w // 5)
        cv2.rectangle(m, (w // 2 - pw // 2, h // 6), (w // 2 + pw // 2, h - 1),
                      1, -1)
        cv2.rectangle(m, (w // 2 - pw // 2, h // 6), (w - 1, h // 6 + pw), 1,
                      -1)
    elif shape == 'building':
        m[int(h * rng.uniform(0.0, 0.15)):, :] = 1
    elif shape == 'sign':
        post = max(2, w // 8)
        tri = np.array(
            [[w // 2, 0], [0, int(h * 0.55)], [w - 1, int(h * 0.55)]],
            np.int32)
        cv2.fillPoly(m, [tri], 1)
        cv2.rectangle(m, (w // 2 - post // 2, int(h * 0.5)),
                      (w // 2 + post // 2, h - 1), 1, -1)
    else:
        raise ValueError(shape)
    return m


def _texture(texture: str, h: int, w: int, colour, rng) -> np.ndarray:
    """float32 ``[h, w, 3]`` BGR texture around ``colour``."""
    base = np.asarray(colour, np.float32)
    img = np.broadcast_to(base, (h, w, 3)).astype(np.float32)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    if texture == 'smooth':
        pass
    elif texture == 'blotchy':
        noise = rng.normal(0, 45, (max(2, h // 6), max(2, w // 6), 1))
        noise = cv2.resize(noise, (w, h), interpolation=cv2.INTER_CUBIC)
        img = img + noise.reshape(h, w, 1)
    elif texture == 'stripes':
        angle = rng.uniform(0, np.pi)
        period = rng.uniform(4, 7)
        phase = np.cos(angle) * xx + np.sin(angle) * yy
        img = img + 55 * np.sign(np.sin(2 * np.pi * phase / period))[..., None]
    elif texture == 'grid':
        period = int(rng.randint(5, 9))
        lines = ((yy.astype(int) % period) < 2) | ((xx.astype(int) % period)
                                                   < 2)
        img = img * np.where(lines, 0.35, 1.15)[..., None]
    else:
        raise ValueError(texture)
    return img + rng.normal(0, 4, img.shape)


def render_object_image(k: int,
                        seed: int,
                        size: Union[int, Tuple[int, int]] = 64) -> np.ndarray:
    """One image of class ``k`` (see the module doc): BGR uint8
    ``[H, W, 3]``."""
    h, w = (size, size) if isinstance(size, int) else size
    shape, texture = _class_pair(k)
    rng = np.random.RandomState(seed)
    img, _ = render_scene(
        int(rng.randint(0, 2**31 - 1)), (h, w), ignore_border=0)
    img = img.astype(np.float32)
    tall = shape in ('person', 'pole', 'building', 'sign')
    oh = int(h * rng.uniform(0.55, 0.9))
    ow = int(oh * (rng.uniform(0.35, 0.6) if tall else rng.uniform(0.9, 1.6)))
    ow = max(6, min(ow, w - 2))
    oh = max(6, min(oh, h - 2))
    y0 = rng.randint(0, h - oh + 1)
    x0 = rng.randint(0, w - ow + 1)
    colour = list(_COLOURS.values())[rng.randint(len(_COLOURS))]
    colour = np.clip(np.asarray(colour) + rng.normal(0, 25, 3), 30, 225)
    mask = _mask(shape, oh, ow, rng).astype(bool)
    tex = _texture(texture, oh, ow, colour, rng)
    patch = img[y0:y0 + oh, x0:x0 + ow]
    patch[mask] = tex[mask]
    img = img * rng.uniform(0.8, 1.2)  # global illumination
    return np.clip(img, 0, 255).astype(np.uint8)


def make_imagenet_layout(root: str,
                         n_classes: int = 8,
                         n_per_class: int = 20,
                         size: Union[int, Tuple[int, int]] = 64,
                         n_val_per_class: int = None,
                         seed: int = 0,
                         suffix: str = '.jpg') -> str:
    """Write ``root/{train,val}/<class>/<class>_<n>.jpg`` (ImageNet layout).

    Args:
        root: output folder (created).
        n_classes: 2..24 classes (:func:`class_names`).
        n_per_class: training images per class.
        size: image side, or ``(H, W)``.
        n_val_per_class: validation images per class (default
            ``max(2, n_per_class // 4)``).
        seed: base seed (train and val images never share one).
        suffix: image file suffix (``.jpg`` or ``.png``).

    Returns:
        ``root``. MMPretrain reads it with
        ``dict(type='CustomDataset', data_root=root, data_prefix='train')``
        or ``dict(type='ImageNet', data_root=root, split='train',
        metainfo=dict(classes=class_names(n_classes)))``.
    """
    names = class_names(n_classes)
    if n_val_per_class is None:
        n_val_per_class = max(2, n_per_class // 4)
    for split, n, offset in (('train', n_per_class, 0), ('val',
                                                         n_val_per_class, 1)):
        for k, name in enumerate(names):
            folder = osp.join(root, split, name)
            os.makedirs(folder, exist_ok=True)
            for i in range(n):
                img_seed = ((seed * 2 + offset) * MAX_CLASSES + k) * 100003 + i
                img = render_object_image(k, img_seed % (2**31 - 1), size)
                path = osp.join(folder, f'{name}_{i:05d}{suffix}')
                if not cv2.imwrite(path, img):
                    raise IOError(f'could not write {path}')
    return root
