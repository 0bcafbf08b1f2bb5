"""The training-only teacher branch and SIAM (BFA + SDHA)."""
import copy
import warnings
from collections import OrderedDict
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.logging import print_log
from mmengine.model import BaseModule
from mmseg.registry import MODELS
from torch import Tensor

from ...io.checkpoint import read_checkpoint
from ...io.config import load_config, resolve_config, strip_pretrained
from ...io.errors import ConfigError
from ...io.state_dict import extract_state_dict, load_checked_state_dict
from ..layers import init_sctnet_weights
from .siam_taps import (check_width, describe_outputs, parse_student_taps,
                        parse_teacher_taps, sctnet_taps, select_outputs)
from .teacher_files import describe_mit  # noqa: F401 (tests import it here)
from .teacher_files import (TEACHER_PREFIXES, describe_teacher,
                            extract_teacher_state_dict,
                            infer_official_teacher)
from .teacher_head_split import get_head_split


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


def _read_teacher_config(path: str) -> Tuple[dict, dict, Optional[dict]]:
    """``model.backbone``, ``model.decode_head`` and the input
    normalisation of the teacher's training config ``path``. Pretrained
    initialisations (ImageNet files) are dropped: the teacher's weights
    come from ``teacher_checkpoint``."""
    cfg = load_config(resolve_config(path))
    model = cfg.get('model') or {}
    missing = [k for k in ('backbone', 'decode_head') if not model.get(k)]
    if missing:
        raise ConfigError(
            f'teacher_config={path!r} has no model.{missing[0]}: a SIAM '
            'teacher is an MMSegmentation segmentor with a backbone and a '
            'decode head (e.g. configs/demo/segformer_mit-b0_demo_'
            'cityscapes.py).')
    if model.get('neck'):
        raise ConfigError(
            f'teacher_config={path!r} has a neck '
            f'({model["neck"].get("type")}); the SIAM teacher runs backbone '
            '-> decode head only. Use a teacher without a neck.')
    pre = model.get('data_preprocessor') or cfg.get('data_preprocessor')
    norm = None
    if pre and pre.get('mean') is not None:
        norm = dict(mean=list(pre['mean']), std=list(pre['std']),
                    bgr_to_rgb=bool(pre.get('bgr_to_rgb', False)))
    backbone = copy.deepcopy(model['backbone'].to_dict())
    head = copy.deepcopy(model['decode_head'].to_dict())
    strip_pretrained(backbone)
    strip_pretrained(head)
    return backbone, head, norm


@MODELS.register_module()
class VitGuidanceHead(BaseModule):
    """Frozen teacher + SIAM projections (official name).

    Used as the last auxiliary head of :class:`EncoderDecoderDistill`; for
    SCTNet that is ``auxiliary_head[1]``, so that the official key names
    load: ``feature_transforms`` (student decoder feature -> the teacher
    head's features-before-fusion width, 1024 for a 256-channel SegFormer
    head), ``convstage3`` (student stage 3 -> teacher stage 3, 320),
    ``convstage4`` (stage 4 -> 512), ``teacher_backbone`` and
    ``teacher_head`` (MiT + ``SegformerHead`` in the official release; any
    MMSegmentation backbone + a decode head with a split, see below).

    * BFA: ``convstage3(x3)`` (1/16) and ``convstage4(x4)`` (1/32) are
      aligned with the teacher's stage-3 and stage-4 features (teacher
      backbone outputs ``teacher_taps``, default 2 and 3).
    * SDHA: ``feature_transforms(x_out)`` is resized to the teacher's
      features before fusion (1/4), re-standardised to their per-channel
      statistics (:func:`match_channel_statistics`) and passed through the
      teacher head's frozen fusion and classifier (:mod:`.teacher_head_split`:
      ``fusion_conv`` of ``SegformerHead``, ``fpn_bottleneck`` of
      ``UPerHead``); the resulting decoder feature and logits are aligned
      with the teacher's. Gradients flow through the frozen layers into the
      student.

    Which student features are ``x_out``, stage 3 and stage 4 is
    ``student_taps`` (:mod:`.siam_taps`); for SCTNet it follows from
    ``base_channels`` and ``in_index``.

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
        teacher_head (dict, optional): config of the teacher decode head
            (``SegformerHead``, ``UPerHead`` or a head with a registered
            split). Inferred when None (SegFormer head, 256 channels, the
            classes of ``num_classes``).
        teacher_config (str, optional): the teacher's own training config
            (an MMSegmentation segmentor: backbone + decode head, no neck);
            its ``model.backbone`` and ``model.decode_head`` describe the
            teacher, replacing ``teacher_backbone``/``teacher_head``. A
            path as given, else relative to the repository root.
        teacher_checkpoint (str, optional): teacher weights: a file written
            by ``tools/pth_convert.py``, an unconverted MMSegmentation
            checkpoint of the teacher, or a full checkpoint trained with
            SIAM. Loaded in :meth:`init_weights`, i.e. before the first
            training iteration.
        base_channels (int): ``c`` of an SCTNet student (32 for S, 64 for
            B): the inputs are ``x_out`` (4c), stage 3 (4c) and stage 4
            (8c). Ignored when ``student_taps`` is given.
        in_index (Sequence[int] | int, optional): indices of ``(x_out,
            stage3, stage4)`` in the SCTNet backbone outputs. Default
            ``(0, 2, 3)``. An int is the official layout (``in_index=2``:
            the official backbone's third output holds the image and
            ``[x_out, stage4, stage3]``) and means the default.
        student_taps (dict, optional): where the student's ``decoder``,
            ``stage3`` and ``stage4`` features are and their widths, e.g.
            ``dict(decoder=dict(index=1, channels=128), stage3=dict(
            module='backbone.context_branch_layers.1', port='input',
            channels=128), stage4=...)`` (:mod:`.siam_taps`). Default: the
            SCTNet taps of ``base_channels``/``in_index``.
        teacher_taps (dict, optional): the teacher backbone outputs BFA
            aligns with, ``dict(stage3=dict(index=2), stage4=dict(index=3))``
            by default; widths from the teacher head's ``in_channels`` or
            given as ``channels``.
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
                 in_index: Union[Sequence[int], int, None] = None,
                 loss_decode: dict = dict(
                     type='AlignmentLoss', loss_weight=[3, 15, 15, 15]),
                 teacher_channels: Optional[dict] = None,
                 student_taps: Optional[dict] = None,
                 teacher_taps: Optional[dict] = None,
                 teacher_config: Optional[str] = None,
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
        # the student's features: SCTNet's from base_channels/in_index
        if isinstance(in_index, int):  # official layout, see the docstring
            in_index = None
        if student_taps is None:
            student_taps = sctnet_taps(base_channels,
                                       tuple(in_index or (0, 2, 3)))
        elif in_index is not None and tuple(in_index) != (0, 2, 3):
            raise ConfigError(
                f'VitGuidanceHead: in_index={tuple(in_index)} and '
                'student_taps are both given; student_taps says where every '
                'feature is: remove in_index.')
        self.student_taps = parse_student_taps(student_taps)
        self.in_index = tuple(in_index or (0, 2, 3))
        # the teacher: its own config file, given configs or the official
        self.teacher_config = teacher_config
        self.teacher_normalization = None
        if teacher_config is not None:
            if teacher_backbone is not None or teacher_head is not None:
                print_log(
                    f'VitGuidanceHead: the teacher is described by '
                    f'teacher_config={teacher_config!r}; the teacher_backbone'
                    '/teacher_head of the config are not used.',
                    logger='current')
            teacher_backbone, teacher_head, self.teacher_normalization = \
                _read_teacher_config(teacher_config)
        elif teacher_backbone is None or teacher_head is None:
            teacher_backbone, teacher_head, reason = infer_official_teacher(
                base_channels, teacher_checkpoint, kwargs.get('num_classes'),
                kwargs.get('norm_cfg'), teacher_backbone, teacher_head)
            print_log(f'VitGuidanceHead: {reason}', logger='current')
        self.base_channels = base_channels
        self.head_split = get_head_split(teacher_head.get('type'))
        self.teacher_taps = parse_teacher_taps(teacher_taps, teacher_head)
        widths = dict(
            stage3=self.teacher_taps['stage3']['channels'],
            stage4=self.teacher_taps['stage4']['channels'],
            decoder=self.head_split.concat_channels(teacher_head))
        if teacher_channels is not None and dict(teacher_channels) != widths:
            raise ConfigError(
                f'teacher_channels={dict(teacher_channels)} does not match '
                f'the teacher built from the config, whose stage-3/stage-4/'
                f'features-before-fusion widths are {widths}. Fix the '
                'teacher config (backbone widths, head in_channels/channels) '
                'or drop teacher_channels to derive the projections from it.')
        self.teacher_widths = widths
        taps = self.student_taps
        self.feature_transforms = nn.Conv2d(taps['decoder']['channels'],
                                            widths['decoder'], 1)
        self.convstage4 = nn.Conv2d(taps['stage4']['channels'],
                                    widths['stage4'], 1)
        self.convstage3 = nn.Conv2d(taps['stage3']['channels'],
                                    widths['stage3'], 1)
        self.teacher_backbone = MODELS.build(copy.deepcopy(teacher_backbone))
        self.teacher_head = MODELS.build(copy.deepcopy(teacher_head))
        self.loss_decode = MODELS.build(loss_decode)
        self._split_checked = False
        self._freeze_teacher()

    def module_taps(self) -> Dict[str, Tuple[str, str]]:
        """``{tap name: (module name, port)}`` of the student features read
        through forward hooks (registered by the segmentor)."""
        return {
            name: (tap['module'], tap['port'])
            for name, tap in self.student_taps.items() if 'module' in tap
        }

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
        SCTNet checkpoint or an unconverted MMSegmentation checkpoint of the
        teacher (:func:`extract_teacher_state_dict`). A teacher of another
        size is refused with what the file and the config hold.
        """
        fix = ('Download the official teacher (README, model zoo) into '
               'pretrained/, or train the teacher with MMSegmentation on your '
               'dataset and convert it: python tools/pth_convert.py '
               f'work_dirs/<teacher>/iter_<N>.pth {filename}. To train '
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
            detail=(f'The file holds {describe_teacher(state)}; the config '
                    f'builds {describe_teacher(own)}, i.e. stage widths '
                    f'{self.teacher_widths} for the SIAM projections, and '
                    f'{self.teacher_head.num_classes} classes. Use the '
                    'teacher trained for this dataset and model size '
                    '(MiT-B2 for SCTNet-S, MiT-B3 for SCTNet-B), or set '
                    'siam_head.teacher_config (or teacher_backbone/'
                    'teacher_head) to the teacher you have.'),
            fix=fix,
            source=f'frozen teacher from {filename}')

    @torch.no_grad()
    def teacher_forward(self, img: Tensor) -> Dict[str, object]:
        """Run the frozen teacher.

        Returns a dict with ``stages`` (the backbone outputs; for MiT 4
        maps at 1/4..1/32), ``stage3``/``stage4`` (the outputs
        ``teacher_taps`` names), ``concat`` (the head's features before
        fusion, e.g. ``[N, 4*256, H/4, W/4]``, the resized and concatenated
        features of a SegFormer head), ``decoder`` (the fusion output) and
        ``logits`` (``[N, K, H/4, W/4]``, the head's own output), see
        :class:`~.teacher_head_split.TeacherHeadSplit`.
        """
        stages = select_outputs(self.teacher_backbone(img))
        out = self.head_split.run(
            self.teacher_head, stages, check=not self._split_checked)
        self._split_checked = True
        fix = ('Fix siam_head.teacher_taps / the teacher config (backbone '
               f'outputs: {describe_outputs(stages)}).')
        for name, tap in self.teacher_taps.items():
            if not -len(stages) <= tap['index'] < len(stages):
                raise ConfigError(
                    f'teacher_taps.{name}.index={tap["index"]}, but the '
                    f'teacher backbone returns {len(stages)} outputs: '
                    f'{describe_outputs(stages)}. Pick one of them.')
            out[name] = check_width(f'teacher_taps.{name}', tap,
                                    stages[tap['index']], fix,
                                    source='the teacher backbone')
        width = self.teacher_widths['decoder']
        if out['concat'].dim() != 4 or out['concat'].shape[1] != width:
            split = type(self.head_split).__name__
            raise ConfigError(
                f'{split}.concat_channels gives {width} channels for the '
                f'features before fusion of {type(self.teacher_head).__name__}'
                f', but the head produces {tuple(out["concat"].shape)} there; '
                f'fix {split}.concat_channels.')
        out['stages'] = stages
        return out

    # ------------------------------------------------------------------
    # SIAM
    def student_feature(self, name: str, feats,
                        tapped: Optional[Dict[str, Tensor]]) -> Tensor:
        """The student's ``name`` feature (``decoder``/``stage3``/
        ``stage4``) from the ``extract_feat`` outputs or the module taps,
        with its width checked."""
        tap = self.student_taps[name]
        where = f'student_taps.{name}'
        if 'module' in tap:
            if tapped is None or name not in tapped:
                raise ConfigError(
                    f'{where} taps module {tap["module"]!r}: the guidance '
                    'head must run inside EncoderDecoderDistill.loss, which '
                    'captures it.')
            return check_width(
                where, tap, tapped[name],
                f'Set {where}.channels to the width of that tensor, or tap '
                'another module.')
        outs = select_outputs(feats)
        listing = describe_outputs(outs)
        if not -len(outs) <= tap['index'] < len(outs):
            raise ConfigError(
                f'{where}.index={tap["index"]} (channels={tap["channels"]}), '
                f'but extract_feat returns {len(outs)} outputs in training: '
                f'{listing}. Pick one of them, or tap a module '
                f'({where}=dict(module=..., channels=...)).')
        return check_width(
            where, tap, outs[tap['index']],
            f'extract_feat returns in training: {listing}. Set '
            f'{where}.channels to the width of the output you mean, or '
            'another index.')

    def bfa(self, x3: Tensor, x4: Tensor) -> Tuple[Tensor, Tensor]:
        """Backbone feature alignment: project stage 3 and stage 4."""
        return self.convstage3(x3), self.convstage4(x4)

    def sdha(self, x_out: Tensor, teacher_concat: Tensor) -> Tuple[Tensor,
                                                                   Tensor]:
        """Shared decoder head alignment.

        ``x_out`` (SCTNet: ``[N, 4c, H/8, W/8]``) -> 1x1 conv -> bilinear
        resize to the size of the teacher's features before fusion (1/4)
        -> per-channel re-standardisation -> the teacher head's fusion
        (``fusion_conv`` of SegFormer) -> its classifier. Returns the
        student's decoder feature and logits (with gradients).
        """
        feat = self.feature_transforms(x_out)
        if feat.shape[2:] != teacher_concat.shape[2:]:
            feat = F.interpolate(
                feat,
                size=teacher_concat.shape[2:],
                mode='bilinear',
                align_corners=False)
        feat = match_channel_statistics(feat, teacher_concat)
        decoder = self.head_split.fuse(self.teacher_head, feat)
        return decoder, self.head_split.classify(self.teacher_head, decoder)

    def forward(self, feats: Sequence[Tensor], img: Tensor,
                tapped: Optional[Dict[str, Tensor]] = None
                ) -> Tuple[List[Tensor], List[Tensor]]:
        """Student and teacher maps, ``[logits, decoder, stage4, stage3]``.

        Args:
            feats: the outputs of the student's ``extract_feat`` (see
                :class:`SCTNet`).
            img: the normalised input batch the student saw.
            tapped: the module taps' tensors (``{tap name: tensor}``),
                captured by :class:`EncoderDecoderDistill`.
        """
        x_out, x3, x4 = (self.student_feature(name, feats, tapped)
                         for name in ('decoder', 'stage3', 'stage4'))
        t = self.teacher_forward(img)
        s3, s4 = self.bfa(x3, x4)
        s_dec, s_logits = self.sdha(x_out, t['concat'])
        feats_s = [s_logits, s_dec, s4, s3]
        feats_t = [t['logits'], t['decoder'], t['stage4'], t['stage3']]
        return feats_s, feats_t

    def loss(self, feats: Sequence[Tensor], img: Tensor,
             tapped: Optional[Dict[str, Tensor]] = None) -> Dict[str, Tensor]:
        """The four named alignment terms."""
        feats_s, feats_t = self.forward(feats, img, tapped)
        return self.loss_decode(feats_s, feats_t)
