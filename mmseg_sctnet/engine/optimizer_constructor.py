"""Optimizer constructor that leaves the frozen teacher out."""
import torch.nn as nn
from mmengine.logging import print_log
from mmengine.optim import DefaultOptimWrapperConstructor
from mmseg.registry import OPTIM_WRAPPER_CONSTRUCTORS


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class SCTNetOptimWrapperConstructor(DefaultOptimWrapperConstructor):
    """``DefaultOptimWrapperConstructor`` that never sees the frozen teacher.

    Sub-modules flagged ``frozen_teacher`` (the SegFormer teacher inside
    :class:`VitGuidanceHead`) are skipped entirely, so the teacher is absent
    from every parameter group: not merely ``lr_mult=0``. All other
    behaviour (``paramwise_cfg``, ``custom_keys``, ...) is MMEngine's.
    """

    def __call__(self, model: nn.Module):
        if hasattr(model, 'module'):
            model = model.module
        self._skipped = 0
        if not self.paramwise_cfg:
            # route through add_params so the skip applies without
            # paramwise options as well
            self.paramwise_cfg = dict(custom_keys=dict())
        wrapper = super().__call__(model)
        if self._skipped:
            print_log(
                f'Frozen teacher: {self._skipped:,} parameters left out of '
                'the optimizer.',
                logger='current')
        return wrapper

    def add_params(self, params, module, prefix='', is_dcn_module=None):
        if getattr(module, 'frozen_teacher', False):
            self._skipped += sum(p.numel() for p in module.parameters())
            return
        super().add_params(params, module, prefix, is_dcn_module)
