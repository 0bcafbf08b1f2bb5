"""SCTHead: the light decode head of SCTNet (and its auxiliary twin)."""
import torch
import torch.nn as nn
from mmcv.cnn import build_norm_layer
from mmseg.models.decode_heads.decode_head import BaseDecodeHead
from mmseg.models.losses import CrossEntropyLoss
from mmseg.registry import MODELS
from torch import Tensor

from ...io.errors import ConfigError
from ..layers import fuse_conv_bn, init_sctnet_weights
from ..layers.norm import resolve_norm_cfg


@MODELS.register_module()
class SCTHead(BaseDecodeHead):
    """BN -> ReLU -> 3x3 conv -> BN -> ReLU -> [dropout] -> 1x1 classifier.

    Input ``inputs[in_index]`` of shape ``[N, in_channels, h, w]`` (``x_out``
    at 1/8 for the decode head); output logits ``[N, num_classes, h, w]`` at
    the same stride (mmseg upsamples them to the image size). Official
    parameter names ``bn1``, ``conv1``, ``bn2``, ``conv_seg``.

    Args:
        norm_cfg (dict, optional): normalisation; plain BN when None.
        **kwargs: :class:`BaseDecodeHead` arguments (``in_channels``,
            ``channels``, ``num_classes``, ``in_index``, ``dropout_ratio``
            (0 in the official configs), ``loss_decode``, ``sampler``
            (e.g. OHEM), ...). Class weights go into
            ``ClassWeightedCrossEntropyLoss``: MMSegmentation's
            ``CrossEntropyLoss`` with ``class_weight`` fails on the first
            ignored (255) label pixel, so it is refused here.
    """

    def __init__(self, norm_cfg=None, **kwargs):
        super().__init__(norm_cfg=resolve_norm_cfg(norm_cfg), **kwargs)
        losses = self.loss_decode if isinstance(
            self.loss_decode, nn.ModuleList) else [self.loss_decode]
        if any(type(loss) is CrossEntropyLoss and not loss.use_sigmoid
               and loss.class_weight is not None for loss in losses):
            raise ConfigError(
                f'{type(self).__name__}.loss_decode: MMSegmentation\'s '
                'CrossEntropyLoss with class_weight stops at the first label '
                'pixel at the ignore index 255 (it indexes class_weight with '
                "every label value); use type='ClassWeightedCrossEntropyLoss' "
                '(the same loss, with the ignored pixels left out).')
        self.bn1 = build_norm_layer(self.norm_cfg, self.in_channels)[1]
        self.conv1 = nn.Conv2d(
            self.in_channels, self.channels, kernel_size=3, padding=1)
        self.bn2 = build_norm_layer(self.norm_cfg, self.channels)[1]
        self.relu = nn.ReLU()

    def init_weights(self) -> None:
        """Kaiming for the 3x3 conv, N(0, 0.01) for the classifier."""
        init_sctnet_weights(self)
        nn.init.normal_(self.conv_seg.weight, std=0.01)
        nn.init.zeros_(self.conv_seg.bias)
        self._is_init = True

    def switch_to_deploy(self, fold_prenorm: bool = True) -> 'SCTHead':
        """Inference form, in place: ``bn2`` folded into ``conv1``, ReLUs in
        place, a zero dropout removed. ``bn1`` stays: a ReLU separates it
        from ``conv1``. ``forward`` is unchanged and computes
        ``cls(relu(conv1'(relu(bn1(x)))))``."""
        if isinstance(self.bn2, nn.Identity):
            return self  # already deployed
        self.conv1 = fuse_conv_bn(self.conv1, self.bn2)
        self.bn2 = nn.Identity()
        self.relu = nn.ReLU(inplace=True)  # both uses see fresh tensors
        if self.dropout is not None and not self.dropout.p:
            self.dropout = None
        return self

    def forward(self, inputs) -> Tensor:
        x = self._transform_inputs(inputs)
        x = self.conv1(self.relu(self.bn1(x)))
        return self.cls_seg(self.relu(self.bn2(x)))

    def loss_by_feat(self, seg_logits: Tensor, batch_data_samples) -> dict:
        """:class:`BaseDecodeHead`'s loss (logits resized to the label size,
        the pixel sampler, ``loss_decode``, accuracy) computed in fp32.

        Under mixed precision (``tools/train.py --amp``) the logits come
        out of autocast in bf16/fp16; they are cast to float32 and autocast
        is off for the loss, so that the resize and the cross-entropy do
        not run in the low precision (CPU autocast resizes in bf16). In
        fp32 training this changes nothing.
        """
        with torch.autocast(seg_logits.device.type, enabled=False):
            return super().loss_by_feat(seg_logits.float(),
                                        batch_data_samples)


@MODELS.register_module(name=['AU_SCTHead', 'AuxSCTHead'])
class AuxSCTHead(SCTHead):
    """Training-only auxiliary head on the stage-2 feature (``in_index=1``).

    Same structure as :class:`SCTHead`; registered under the official name
    ``AU_SCTHead``. CE weight 0.4 in the configs.
    """
