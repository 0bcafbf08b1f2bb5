"""Multi-scale + flip test-time augmentation around a config's test Resize.

MMSegmentation's dataset bases build their ``tta_pipeline`` from the
original image size; SCTNet tests at a fixed size (Seg50: 1024x512), so the
multi-scale test has to repeat *the test pipeline's* ``Resize`` at ratios of
its scale. :class:`ScaleFlipTTA` is that, as one registered transform a
config names in four lines; it expands to MMCV's ``TestTimeAug``, so
``tools/test.py --tta`` and MMSegmentation's own ``test.py --tta`` (which
reads ``tta_pipeline`` as it is) run the same views.
"""
import copy
from typing import List, Sequence

from mmcv.transforms import TestTimeAug
from mmseg.registry import TRANSFORMS

__all__ = ['TTA_RATIOS', 'ScaleFlipTTA', 'scale_flip_stages']

#: MMSegmentation's ``img_ratios`` of its ``--tta`` (``_base_/datasets``)
TTA_RATIOS = (0.5, 0.75, 1.0, 1.25, 1.5, 1.75)


def scale_flip_stages(resize: dict,
                      img_ratios: Sequence[float] = TTA_RATIOS,
                      then: Sequence[dict] = ()) -> List[List[dict]]:
    """The ``transforms`` of a ``TestTimeAug``: ``resize`` at each ratio of
    its ``scale`` ``(w, h)`` (each side truncated to an int), no flip and a
    horizontal flip, then each transform of ``then`` as a stage of its own
    (views: ratios x 2, in that order)."""
    w, h = resize['scale']
    scales = [
        dict(copy.deepcopy(dict(resize)), scale=(int(w * r), int(h * r)))
        for r in img_ratios
    ]
    flips = [
        dict(type='RandomFlip', prob=p, direction='horizontal')
        for p in (0., 1.)
    ]
    return [scales, flips] + [[copy.deepcopy(dict(t))] for t in then]


@TRANSFORMS.register_module()
class ScaleFlipTTA(TestTimeAug):
    """``TestTimeAug`` over :func:`scale_flip_stages`.

    Args:
        resize (dict): the test pipeline's ``Resize`` (its ``scale`` is
            ``(w, h)``; ``keep_ratio`` and other keys are kept per view).
        img_ratios (Sequence[float]): ratios of ``scale``; default
            :data:`TTA_RATIOS`.
        then (Sequence[dict]): the test pipeline's transforms after its
            Resize (``LoadAnnotations``, ``PackSegInputs``).

    Example (a dataset base whose ``test_pipeline`` is load, Resize,
    LoadAnnotations, pack)::

        tta_pipeline = [
            test_pipeline[0],
            dict(type='ScaleFlipTTA', resize=test_pipeline[1],
                 img_ratios=img_ratios, then=test_pipeline[2:])
        ]
    """

    def __init__(self,
                 resize: dict,
                 img_ratios: Sequence[float] = TTA_RATIOS,
                 then: Sequence[dict] = ()):
        if not resize.get('scale'):
            raise ValueError(f'ScaleFlipTTA: resize={dict(resize)} has no '
                             'scale (w, h) to take ratios of')
        super().__init__(scale_flip_stages(resize, img_ratios, then))
