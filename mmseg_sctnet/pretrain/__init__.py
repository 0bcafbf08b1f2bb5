"""What is trained before the student: its ImageNet-pretrained backbone
and its SegFormer teacher.

* :mod:`.cls_neck`: :class:`SCTNetClsNeck`, registered in MMPretrain's
  ``MODELS`` (the ``configs/pretrain/`` configs import it through
  ``custom_imports``; importing this package does not import MMPretrain).
* :mod:`.backbone`: :func:`export_backbone`, the checked export of a
  pretraining checkpoint to the file a segmentation config loads
  (``tools/export_backbone.py``).
* :mod:`.teacher`: :func:`convert_teacher`, a SegFormer checkpoint of
  MMSegmentation into the teacher file of SIAM (``tools/pth_convert.py``).

Recipe, cost and usage: ``docs/pretrain.md``.
"""
from .backbone import (build_reference_backbone, check_backbone_state,
                       export_backbone, infer_backbone_cfg,
                       select_backbone_state)
from .teacher import convert_teacher

__all__ = [
    'build_reference_backbone', 'check_backbone_state', 'export_backbone',
    'infer_backbone_cfg', 'select_backbone_state', 'convert_teacher'
]
