"""Raw dataset downloads -> the files the configs read.

``tools/dataset_converters/*.py`` are the command lines. Every converter
runs through :func:`~.batch.run_batch`: a bad item is skipped and named,
the rest converted, and the exit status says whether anything was
skipped; outputs are written atomically and existing ones kept unless
``force``, so an interrupted conversion is simply run again.
"""
from .batch import BatchReport, SkipItem, run_batch
from .cityscapes import convert_cityscapes
from .coco_stuff10k import convert_coco_stuff10k

__all__ = [
    'BatchReport', 'SkipItem', 'run_batch', 'convert_cityscapes',
    'convert_coco_stuff10k'
]
