"""Dataset helpers: procedural data in the real on-disk layouts."""
from .synthetic import (CLASSES_STREET, make_ade20k, make_cityscapes,
                        make_coco_stuff10k, make_custom, render_scene)

__all__ = [
    'CLASSES_STREET', 'make_ade20k', 'make_cityscapes', 'make_coco_stuff10k',
    'make_custom', 'render_scene'
]
