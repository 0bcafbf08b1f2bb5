"""ImageNet pretraining of the SCTNet backbone with MMPretrain.

* :mod:`.cls_neck`: :class:`SCTNetClsNeck`, registered in MMPretrain's
  ``MODELS`` (the ``configs/pretrain/`` configs import it through
  ``custom_imports``; importing this package does not import MMPretrain).
* :mod:`.convert`: :func:`export_backbone`, the checked export of a
  pretraining checkpoint to the file a segmentation config loads
  (``tools/export_backbone.py``).

Recipe, cost and usage: ``docs/pretrain.md``.
"""
from .convert import (build_reference_backbone, check_backbone_state,
                      export_backbone, infer_backbone_cfg,
                      select_backbone_state)

__all__ = [
    'build_reference_backbone', 'check_backbone_state', 'export_backbone',
    'infer_backbone_cfg', 'select_backbone_state'
]
