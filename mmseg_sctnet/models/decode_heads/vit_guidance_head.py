"""The training-only transformer branch and SIAM (BFA + SDHA)."""
import copy
import warnings
from collections import OrderedDict
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.logging import print_log
from mmengine.model import BaseModule
from mmseg.models.utils import resize
from mmseg.registry import MODELS
from torch import Tensor

from ...io.checkpoint import read_checkpoint
from ...io.state_dict import extract_state_dict, load_checked_state_dict
from ..layers import init_sctnet_weights
from .teacher_files import (TEACHER_PREFIXES, describe_mit,
                            extract_teacher_state_dict,
                            infer_official_teacher)


def match_channel_statistics(student: Tensor, teacher: Tensor) -> Tensor:
    """Per-channel re-standardisation used by SDHA.

    Standardises every channel of ``student`` over ``(N, H, W)`` (unbiased
    std, +1e-6) and rescales it to the per-channel mean and (unbiased) std of
    ``teacher``. Both ``[N, C, H, W]`` with equal ``C``; the spatial sizes may
    differ. Gradients flow into ``student`` only.
    """
    if student.shape[1] != teacher.shape[1]:
        raise ValueError(f'channel mismatch: student {student.shape[1]} vs '
                         f'teacher {teacher.shape[1]}')
    dims = (0, 2, 3)
    s_mean = student.mean(dim=dims, keepdim=True)
    s_std = student.std(dim=dims, keepdim=True)
    t_mean = teacher.mean(dim=dims, keepdim=True)
    t_std = teacher.std(dim=dims, keepdim=True)
    return (student - s_mean) / (s_std + 1e-6) * t_std + t_mean


def _teacher_widths(backbone_cfg: dict, head_cfg: dict) -> Dict[str, int]:
    """Stage-3/4 widths and the SegFormer head's concatenated width."""
    embed = backbone_cfg.get('embed_dims', 64)
    heads = backbone_cfg.get('num_heads', [1, 2, 5, 8])
    in_ch = head_cfg.get('in_channels', [embed * h for h in heads])
    return dict(
        stage3=embed * heads[2],
        stage4=embed * heads[3],
        decoder=head_cfg['channels'] * len(in_ch))


@MODELS.register_module()
class VitGuidanceHead(BaseModule):
    """Frozen SegFormer teacher + SIAM projections (official name).

    Used as ``auxiliary_head[1]`` of :class:`EncoderDecoderDistill` so that
    the official key names load: ``feature_transforms`` (x_out -> teacher
    concatenated-feature width, 1024 for a 256-channel SegFormer head),
    ``convstage3`` (stage 3 -> 320), ``convstage4`` (stage 4 -> 512),
    ``teacher_backbone`` (mmseg ``MixVisionTransformer``) and
    ``teacher_head`` (mmseg ``SegformerHead``).

    * BFA: ``convstage3(x3)`` (1/16) and ``convstage4(x4)`` (1/32) are
      aligned with the teacher's stage-3 and stage-4 features.
    * SDHA: ``feature_transforms(x_out)`` is resized to the teacher's 1/4
      size, re-standardised to the teacher's per-channel statistics
      (:func:`match_channel_statistics`) and passed through the teacher's
      frozen ``fusion_conv`` and classifier; the resulting decoder feature
      and logits are aligned with the teacher's. Gradients flow through the
      frozen layers into the student.

    The teacher is frozen for real: ``requires_grad=False``, kept in eval
    mode whatever ``train()`` is called with (BN statistics and dropout
    never change), run under ``torch.no_grad()``, and skipped by
    :class:`SCTNetOptimWrapperConstructor`.

    A head written as in the official configs (no ``teacher_backbone`` /
    ``teacher_head``; ``init_cfg=dict(type='Pretrained', checkpoint=TEACHER)``,
    ``in_index=2``, ``num_classes`` and the decode-head arguments
    ``in_channels``/``channels``) builds the teacher the official head builds
    (see :func:`infer_official_teacher`).

    Args:
        teacher_backbone (dict, optional): config of the teacher backbone
            (``MixVisionTransformer``; MiT-B2 for SCTNet-S, MiT-B3 for B).
            Inferred when None.
        teacher_head (dict, optional): config of the teacher
            ``SegformerHead``. Inferred when None (256 channels, the classes
            of ``num_classes``).
        teacher_checkpoint (str, optional): teacher weights: a file written
            by ``tools/pth_convert.py``, an unconverted mmseg SegFormer
            checkpoint, or a full SCTNet checkpoint. Loaded in
            :meth:`init_weights`, i.e. before the first training iteration.
        base_channels (int): ``c`` of the student (32 for S, 64 for B);
            the inputs are ``x_out`` (4c), stage 3 (4c) and stage 4 (8c).
        in_index (Sequence[int] | int): indices of ``(x_out, stage3,
            stage4)`` in the backbone outputs. Default ``(0, 2, 3)``. An int
            is the official layout (``in_index=2``: the official backbone's
            third output holds the image and ``[x_out, stage4, stage3]``)
            and means the default.
        loss_decode (dict): the alignment loss. Default
            ``AlignmentLoss`` with weights ``[3, 15, 15, 15]``.
        teacher_channels (dict, optional): expected teacher widths
            ``dict(stage3=, stage4=, decoder=)``; derived from the teacher
            config when None, validated against it otherwise.
    """

    def __init__(self,
                 teacher_backbone: Optional[dict] = None,
                 teacher_head: Optional[dict] = None,
                 teacher_checkpoint: Optional[str] = None,
                 base_channels: int = 64,
                 in_index: Sequence[int] = (0, 2, 3),
                 loss_decode: dict = dict(
                     type='AlignmentLoss', loss_weight=[3, 15, 15, 15]),
                 teacher_channels: Optional[dict] = None,
                 init_cfg=None,
                 **kwargs):
        super().__init__(init_cfg=init_cfg)
        # official configs also pass decode-head arguments; they are unused
        ignored = set(kwargs) - {
            'in_channels', 'channels', 'num_classes', 'align_corners',
            'norm_cfg', 'dropout_ratio', 'inter_transform_type'
        }
        if ignored:
            raise TypeError(f'VitGuidanceHead got unexpected arguments '
                            f'{sorted(ignored)}')
        if init_cfg is not None and init_cfg.get('type') == 'Pretrained':
            # official configs give the teacher file as init_cfg
            teacher_checkpoint = teacher_checkpoint or init_cfg['checkpoint']
            self.init_cfg = None
        self.teacher_checkpoint = teacher_checkpoint
        if isinstance(in_index, int):  # official layout, see the docstring
            in_index = (0, 2, 3)
        self.in_index = tuple(in_index)
        if teacher_backbone is None or teacher_head is None:
            teacher_backbone, teacher_head, reason = infer_official_teacher(
                base_channels, teacher_checkpoint, kwargs.get('num_classes'),
                kwargs.get('norm_cfg'), teacher_backbone, teacher_head)
            print_log(f'VitGuidanceHead: {reason}', logger='current')
        self.base_channels = base_channels
        widths = _teacher_widths(teacher_backbone, teacher_head)
        if teacher_channels is not None and dict(teacher_channels) != widths:
            raise ValueError(
                f'teacher_channels={dict(teacher_channels)} does not match '
                f'the teacher built from the config, whose stage-3/stage-4/'
                f'concatenated-decoder widths are {widths}. Fix the teacher '
                'config (MiT embed_dims/num_heads, SegformerHead channels) or '
                'drop teacher_channels to derive the projections from it.')
        self.teacher_widths = widths
        c = base_channels
        self.feature_transforms = nn.Conv2d(4 * c, widths['decoder'], 1)
        self.convstage4 = nn.Conv2d(8 * c, widths['stage4'], 1)
        self.convstage3 = nn.Conv2d(4 * c, widths['stage3'], 1)
        self.teacher_backbone = MODELS.build(copy.deepcopy(teacher_backbone))
        self.teacher_head = MODELS.build(copy.deepcopy(teacher_head))
        self.loss_decode = MODELS.build(loss_decode)
        self._freeze_teacher()

    # ------------------------------------------------------------------
    # teacher handling
    def _freeze_teacher(self) -> None:
        for m in (self.teacher_backbone, self.teacher_head):
            m.requires_grad_(False)
            m.eval()
            m.frozen_teacher = True  # read by SCTNetOptimWrapperConstructor

    def train(self, mode: bool = True):
        """Set the projections' mode; the teacher always stays in eval."""
        super().train(mode)
        self.teacher_backbone.eval()
        self.teacher_head.eval()
        return self

    def teacher_modules(self) -> List[nn.Module]:
        return [self.teacher_backbone, self.teacher_head]

    def init_weights(self) -> None:
        """Kaiming init of the projections, then load the teacher.

        Raises:
            FileNotFoundError: the teacher checkpoint does not exist.
            ValueError: it is not a teacher of the configured shape.
        """
        for m in (self.feature_transforms, self.convstage3, self.convstage4):
            init_sctnet_weights(m)
        if self.teacher_checkpoint is None:
            warnings.warn(
                'VitGuidanceHead has no teacher_checkpoint: SIAM aligns the '
                'student with a randomly initialised teacher. Set '
                'teacher_checkpoint (see tools/pth_convert.py) or train '
                'without SIAM (model.use_siam=False).')
            self.teacher_backbone.init_weights()
            self.teacher_head.init_weights()
        else:
            self.load_teacher(self.teacher_checkpoint)
        self._freeze_teacher()
        self._is_init = True

    def load_teacher(self, filename: str) -> None:
        """Load and validate teacher weights (all tensors must match).

        ``filename`` (path or URL) may be a converted teacher file, a whole
        SCTNet checkpoint or an MMSegmentation SegFormer checkpoint
        (:func:`extract_teacher_state_dict`). A teacher of another size is
        refused with the MiT variants of the file and of the config.
        """
        fix = ('Download the official teacher (README, model zoo) into '
               'pretrained/, or train a SegFormer with MMSegmentation on your '
               'dataset and convert it: python tools/pth_convert.py '
               f'work_dirs/<segformer>/iter_<N>.pth {filename}. To train '
               'without SIAM: --cfg-options model.use_siam=False.')
        state = extract_teacher_state_dict(
            extract_state_dict(
                read_checkpoint(filename, 'Teacher checkpoint', fix)))
        own = OrderedDict((k, v) for k, v in self.state_dict().items()
                          if k.startswith(TEACHER_PREFIXES))
        # strict both ways: tensors the config's teacher lacks (e.g. a
        # MiT-B3 file for a B2 config) would silently be dropped
        load_checked_state_dict(
            self,
            state,
            headline=f'Teacher checkpoint {filename!r} does not fit the '
            'teacher in the config',
            strict=True,
            required=TEACHER_PREFIXES,
            detail=(f'The file holds {describe_mit(state)}; the config '
                    f'builds {describe_mit(own)}, i.e. stage widths '
                    f'{self.teacher_widths} for the SIAM projections, and '
                    f'{self.teacher_head.num_classes} classes. Use the '
                    'teacher trained for this dataset and model size '
                    '(MiT-B2 for SCTNet-S, MiT-B3 for SCTNet-B), or set '
                    'siam_head.teacher_backbone/teacher_head to the teacher '
                    'you have.'),
            fix=fix,
            source=f'frozen teacher from {filename}')

    @torch.no_grad()
    def teacher_forward(self, img: Tensor) -> Dict[str, object]:
        """Run the frozen SegFormer teacher.

        Returns a dict with ``stages`` (4 maps at 1/4..1/32), ``concat``
        (``[N, 4*256, H/4, W/4]``, the head's resized and concatenated
        features), ``decoder`` (``fusion_conv`` output) and ``logits``
        (``[N, K, H/4, W/4]``), computed exactly as
        ``SegformerHead.forward``.
        """
        stages = self.teacher_backbone(img)
        head = self.teacher_head
        inputs = head._transform_inputs(stages)
        size = inputs[0].shape[2:]
        outs = [
            resize(
                conv(x),
                size=size,
                mode=head.interpolate_mode,
                align_corners=head.align_corners)
            for conv, x in zip(head.convs, inputs)
        ]
        concat = torch.cat(outs, dim=1)
        decoder = head.fusion_conv(concat)
        logits = head.cls_seg(decoder)
        return dict(
            stages=stages, concat=concat, decoder=decoder, logits=logits)

    # ------------------------------------------------------------------
    # SIAM
    def bfa(self, x3: Tensor, x4: Tensor) -> Tuple[Tensor, Tensor]:
        """Backbone feature alignment: project stage 3 and stage 4."""
        return self.convstage3(x3), self.convstage4(x4)

    def sdha(self, x_out: Tensor, teacher_concat: Tensor) -> Tuple[Tensor,
                                                                   Tensor]:
        """Shared decoder head alignment.

        ``x_out`` ``[N, 4c, H/8, W/8]`` -> 1x1 conv -> bilinear resize to the
        teacher's 1/4 size -> per-channel re-standardisation -> teacher
        ``fusion_conv`` -> teacher classifier. Returns the student's decoder
        feature and logits (with gradients).
        """
        feat = self.feature_transforms(x_out)
        if feat.shape[2:] != teacher_concat.shape[2:]:
            feat = F.interpolate(
                feat,
                size=teacher_concat.shape[2:],
                mode='bilinear',
                align_corners=False)
        feat = match_channel_statistics(feat, teacher_concat)
        decoder = self.teacher_head.fusion_conv(feat)
        return decoder, self.teacher_head.cls_seg(decoder)

    def forward(self, feats: Sequence[Tensor],
                img: Tensor) -> Tuple[List[Tensor], List[Tensor]]:
        """Student and teacher maps, ``[logits, decoder, stage4, stage3]``.

        Args:
            feats: the backbone outputs (see :class:`SCTNet`).
            img: the normalised input batch the student saw.
        """
        x_out, x3, x4 = (feats[i] for i in self.in_index)
        t = self.teacher_forward(img)
        s3, s4 = self.bfa(x3, x4)
        s_dec, s_logits = self.sdha(x_out, t['concat'])
        feats_s = [s_logits, s_dec, s4, s3]
        feats_t = [t['logits'], t['decoder'], t['stages'][3], t['stages'][2]]
        return feats_s, feats_t

    def loss(self, feats: Sequence[Tensor], img: Tensor) -> Dict[str, Tensor]:
        """The four named alignment terms."""
        feats_s, feats_t = self.forward(feats, img)
        return self.loss_decode(feats_s, feats_t)
