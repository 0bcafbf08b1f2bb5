"""Dataset helpers: procedural data in the real on-disk layouts, a
checker for the data mistakes that make training fail silently, and the
multi-scale + flip test-time augmentation of the configs."""
from .checker import DatasetReport, check_config, check_dataset
from .synthetic import (CLASSES_STREET, make_ade20k, make_cityscapes,
                        make_coco_stuff10k, make_custom, render_scene)
from .synthetic_cls import make_imagenet_layout
from .tta import TTA_RATIOS, ScaleFlipTTA

__all__ = [
    'CLASSES_STREET', 'make_ade20k', 'make_cityscapes', 'make_coco_stuff10k',
    'make_custom', 'make_imagenet_layout', 'render_scene', 'DatasetReport',
    'check_config', 'check_dataset', 'ScaleFlipTTA', 'TTA_RATIOS'
]
