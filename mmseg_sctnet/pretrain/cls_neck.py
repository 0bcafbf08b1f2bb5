"""Classification neck for ImageNet pretraining of the SCTNet backbone.

Registered in MMPretrain's ``MODELS`` registry (``type='SCTNetClsNeck'``
in a config whose ``default_scope`` is ``'mmpretrain'``); the backbone
itself is MMSegmentation's, named ``type='mmseg.SCTNet'``.
"""
from typing import Sequence, Tuple

import torch
import torch.nn as nn
from mmengine.model import BaseModule
from mmpretrain.registry import MODELS
from torch import Tensor


@MODELS.register_module()
class SCTNetClsNeck(BaseModule):
    """Global average pooling of chosen backbone outputs, concatenated.

    :class:`~mmseg_sctnet.models.backbones.SCTNet` returns
    ``(x_out, x2, x3, x4)``. The pretraining configs pool

    * ``x_out`` (index 0, ``4c`` channels at 1/8): stage 2 concatenated
      with the upsampled DAPPM output -- the tensor the segmentation head
      reads, and the only output through which DAPPM (``spp``) receives a
      gradient;
    * ``x4`` (index 3, ``8c`` channels at 1/32): stage 4 after its last
      CFBlock, the deepest features (the usual input of an ImageNet head).

    Pooling both lets every backbone tensor, DAPPM included, be trained by
    the classification loss, so the exported backbone has no tensor left at
    its random initialisation.

    Shapes: ``outputs[i]: [N, C_i, H_i, W_i]`` ->
    ``([N, sum(C_i)], )`` (a one-element tuple, as MMPretrain heads expect).

    Args:
        in_indices (Sequence[int]): which backbone outputs to pool.
            Default ``(0, 3)``.
    """

    def __init__(self, in_indices: Sequence[int] = (0, 3), init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        if not in_indices:
            raise ValueError('in_indices must name at least one output')
        self.in_indices = tuple(in_indices)
        self.gap = nn.AdaptiveAvgPool2d(1)

    def forward(self, inputs: Sequence[Tensor]) -> Tuple[Tensor]:
        if isinstance(inputs, Tensor):
            inputs = (inputs, )
        pooled = [self.gap(inputs[i]).flatten(1) for i in self.in_indices]
        return (torch.cat(pooled, dim=1), )
