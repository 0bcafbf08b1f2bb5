"""Reading SIAM teacher files: what a checkpoint holds, and which teacher
an official config means.

The guidance head (:class:`~.vit_guidance_head.VitGuidanceHead`) loads its
frozen teacher from a file that may be a converted teacher
(``teacher_backbone.*``, ``teacher_head.*``; ``tools/pth_convert.py``), a
whole SCTNet checkpoint trained with SIAM (``auxiliary_head.1.teacher_*``)
or an unconverted MMSegmentation segmentor (``backbone.*``,
``decode_head.*``): a SegFormer, or another model whose decode head SDHA
can split (:mod:`.teacher_head_split`: ``UPerHead``, ...). This module maps
each to the teacher's key names (:func:`extract_teacher_state_dict`),
describes the teacher a file holds for the messages
(:func:`describe_teacher`, :func:`describe_mit`), tells why a file cannot
be a teacher (:func:`teacher_source_problem`, used by the conversion) and
infers the teacher an official config leaves out
(:func:`infer_official_teacher`).
"""
import os.path as osp
import re
from collections import OrderedDict
from typing import Dict, Optional, Tuple

from torch import Tensor

from ...io.errors import ConfigError
from .teacher_head_split import HEAD_SPLITS

__all__ = [
    'TEACHER_PREFIXES', 'MIT_NAMES', 'extract_teacher_state_dict',
    'describe_mit', 'describe_teacher', 'mit_name', 'teacher_source_problem',
    'infer_official_teacher'
]

TEACHER_PREFIXES = ('teacher_backbone.', 'teacher_head.')


def extract_teacher_state_dict(state: Dict[str, Tensor]) -> 'OrderedDict':
    """Teacher tensors of a checkpoint in the official layout.

    Accepts (1) converted teacher files (``teacher_backbone.*``,
    ``teacher_head.*``), (2) full checkpoints trained with SIAM
    (``auxiliary_head.<i>.teacher_*``) and (3) unconverted MMSegmentation
    checkpoints of the teacher (``backbone.*``, ``decode_head.*``; any
    ``auxiliary_head.*`` is dropped).
    """
    out = OrderedDict()
    for k, v in state.items():
        for p in TEACHER_PREFIXES:
            i = k.find(p)
            if i == 0 or (i > 0 and k[:i].startswith('auxiliary_head.')):
                out[k[i:]] = v
    if out:
        return out
    for k, v in state.items():
        if k.startswith('backbone.'):
            out['teacher_backbone.' + k[len('backbone.'):]] = v
        elif k.startswith('decode_head.'):
            out['teacher_head.' + k[len('decode_head.'):]] = v
    return out


MIT_NAMES = {
    (32, (2, 2, 2, 2)): 'MiT-B0',
    (64, (2, 2, 2, 2)): 'MiT-B1',
    (64, (3, 4, 6, 3)): 'MiT-B2',
    (64, (3, 4, 18, 3)): 'MiT-B3',
    (64, (3, 8, 27, 3)): 'MiT-B4',
    (64, (3, 6, 40, 3)): 'MiT-B5',
}


def describe_mit(state) -> str:
    """E.g. 'MiT-B2 teacher (stage widths [64, 128, 320, 512], depths
    [3, 4, 6, 3])', read from the ``teacher_backbone.*`` keys/shapes."""
    depth: Dict[int, set] = {}
    dims = {}
    for k, v in state.items():
        m = re.match(r'teacher_backbone\.layers\.(\d+)\.1\.(\d+)\.', k)
        if m:
            depth.setdefault(int(m.group(1)), set()).add(int(m.group(2)))
        m = re.match(r'teacher_backbone\.layers\.(\d+)\.0\.projection\.'
                     r'weight$', k)
        if m:
            dims[int(m.group(1))] = int(v.shape[0])
    if not depth:
        return 'no MiT teacher backbone'
    depths = tuple(len(depth.get(i, ())) for i in range(max(depth) + 1))
    widths = [dims.get(i) for i in range(len(depths))]
    name = MIT_NAMES.get((widths[0], depths), 'a MiT')
    return (f'{name} teacher (stage widths {widths}, depths '
            f'{list(depths)})')


def _stage_depths(state, pattern: str) -> Dict[int, set]:
    depth: Dict[int, set] = {}
    for k in state:
        m = re.match(pattern, k)
        if m:
            depth.setdefault(int(m.group(1)), set()).add(int(m.group(2)))
    return depth


def _describe_backbone(state, prefix: str) -> str:
    """The backbone under ``prefix`` as far as its keys tell: MiT, Swin
    and ConvNeXt with their widths and depths, else a tensor count."""
    p = re.escape(prefix)
    # (name, the keys of block <b> of stage <i>, the tensor whose first
    # dimension is the stage width: {i} its stage)
    kinds = (
        # ConvNeXt (mmpretrain): stages.<i>.<block>
        ('ConvNeXt', r'stages\.(\d+)\.(\d+)\.depthwise_conv\.',
         'stages.{i}.0.depthwise_conv.weight'),
        # Swin (mmseg): stages.<i>.blocks.<block>
        ('Swin', r'stages\.(\d+)\.blocks\.(\d+)\.',
         'stages.{i}.blocks.0.norm1.weight'))
    for name, blocks, width_key in kinds:
        depth = _stage_depths(state, p + blocks)
        if depth:
            n = max(depth) + 1
            keys = [prefix + width_key.format(i=i) for i in range(n)]
            widths = [int(state[k].shape[0]) if k in state else None
                      for k in keys]
            return (f'{name} (stage widths {widths}, depths '
                    f'{[len(depth.get(i, ())) for i in range(n)]})')
    n = sum(1 for k in state if k.startswith(prefix))
    return f'a backbone of {n} tensors'


def _head_type(state, prefix: str) -> Optional[str]:
    """The registered head type whose fusion module has tensors under
    ``prefix`` (``'SegformerHead'``, ``'UPerHead'``, ...), else None."""
    for name, split in HEAD_SPLITS.items():
        if _has(state, f'{prefix}{split.fusion}.'):
            return name
    return None


def describe_teacher(state) -> str:
    """What the ``teacher_backbone.*``/``teacher_head.*`` tensors of
    ``state`` are, for the messages: a MiT as :func:`describe_mit` says
    ('MiT-B2 teacher (stage widths ..., depths ...)'), other backbones as
    far as their keys tell, with the head type when it is a registered
    one ('ConvNeXt (stage widths [40, 80, 160, 320], depths [2, 2, 6, 2])
    teacher with a UPerHead')."""
    if _has(state, 'teacher_backbone.layers.0.0.projection.'):
        return describe_mit(state)
    if not _has(state, 'teacher_backbone.'):
        return 'no teacher backbone'
    head = _head_type(state, 'teacher_head.')
    return (f'{_describe_backbone(state, "teacher_backbone.")} teacher' +
            (f' with a {head}' if head else ''))


# The teacher the official VitGuidanceHead builds for each student width
# (it has no teacher arguments): SCTNet-S -> MiT-B2, SCTNet-B -> MiT-B3.
_OFFICIAL_TEACHER = {32: 'MiT-B2', 64: 'MiT-B3'}


def infer_official_teacher(
        base_channels: int,
        teacher_checkpoint: Optional[str],
        num_classes: Optional[int],
        norm_cfg: Optional[dict] = None,
        teacher_backbone: Optional[dict] = None,
        teacher_head: Optional[dict] = None) -> Tuple[dict, dict, str]:
    """Teacher configs for a head written as in the official configs.

    The official configs give ``VitGuidanceHead`` no teacher architecture:
    the official head builds MiT-B2 for ``base_channels=32`` and MiT-B3
    otherwise, with a SegFormer head of 256 channels (SyncBN, dropout 0.1).
    The MiT size is taken from the teacher file name when it names one
    (``Teacher_SegFormer_B2_city.pth``, ``segformer_mit-b3_...``), else from
    ``base_channels`` (32: MiT-B2, 64: MiT-B3).
    A given ``teacher_backbone`` or ``teacher_head`` is kept; the head is
    inferred from the backbone's widths.

    Returns:
        ``(teacher_backbone, teacher_head, reason)``.

    Raises:
        ConfigError: the MiT size or the number of classes cannot be told.
    """
    fix = ('Give the head teacher_backbone=dict(type=\'MixVisionTransformer\''
           ', ...) and teacher_head=dict(type=\'SegformerHead\', ...) as in '
           'configs/_base_/models/sctnet-b.py.')
    if teacher_backbone is None:
        name = osp.basename(str(teacher_checkpoint or ''))
        m = re.search(r'(?:segformer|mit)[_-]?(?:mit[_-]?)?b([0-5])(?!\d)',
                      name, re.IGNORECASE)
        if m:
            size, reason = f'MiT-B{m.group(1)}', f'the teacher file {name!r}'
        elif base_channels in _OFFICIAL_TEACHER:
            size = _OFFICIAL_TEACHER[base_channels]
            reason = (f'base_channels={base_channels} (the official pairing '
                      'SCTNet-S/MiT-B2, SCTNet-B/MiT-B3)')
        else:
            raise ConfigError(
                'VitGuidanceHead: cannot tell which SegFormer teacher to '
                'build: the config gives no teacher_backbone, the teacher '
                f'file name {name!r} names no MiT size (e.g. '
                '"Teacher_SegFormer_B2_city.pth") and base_channels='
                f'{base_channels} is neither SCTNet-S (32) nor SCTNet-B (64). '
                + fix)
        embed, depths = next(k for k, v in MIT_NAMES.items() if v == size)
        teacher_backbone = dict(
            type='MixVisionTransformer',
            in_channels=3,
            embed_dims=embed,
            num_stages=4,
            num_layers=list(depths),
            num_heads=[1, 2, 5, 8],
            patch_sizes=[7, 3, 3, 3],
            sr_ratios=[8, 4, 2, 1],
            out_indices=(0, 1, 2, 3),
            mlp_ratio=4,
            qkv_bias=True,
            drop_rate=0.0,
            attn_drop_rate=0.0,
            drop_path_rate=0.1)
        reason = f'{size} teacher inferred from {reason}'
    else:
        reason = 'teacher head inferred from teacher_backbone'
    if teacher_head is not None:
        return teacher_backbone, teacher_head, reason
    if num_classes is None:
        raise ConfigError(
            'VitGuidanceHead: the teacher head needs num_classes (give it '
            'to the head, as the official configs do, or to decode_head). '
            + fix)
    embed = teacher_backbone.get('embed_dims', 64)
    heads = teacher_backbone.get('num_heads', [1, 2, 5, 8])
    teacher_head = dict(
        type='SegformerHead',
        in_channels=[embed * h for h in heads],
        in_index=[0, 1, 2, 3],
        channels=256,
        dropout_ratio=0.1,
        num_classes=num_classes,
        norm_cfg=dict(norm_cfg or dict(type='SyncBN', requires_grad=True)),
        align_corners=False)
    return teacher_backbone, teacher_head, reason


MIT_PATCH_EMBED = 'backbone.layers.0.0.projection.weight'
TRAIN_TEACHER = ('train a SegFormer on your dataset with MMSegmentation '
                 '(python tools/train.py configs/custom/'
                 'segformer_mit-b0_custom.py) and convert its '
                 'work_dirs/<segformer>/iter_<N>.pth')


def _has(state, prefix: str) -> bool:
    return any(k.startswith(prefix) for k in state)


def mit_name(state, prefix: str) -> str:
    """'MiT-B2 (stage widths ..., depths ...)' of the MiT under prefix."""
    teacher = OrderedDict(('teacher_backbone.' + k[len(prefix):], v)
                          for k, v in state.items()
                          if k.startswith(prefix))
    return describe_mit(teacher).replace(' teacher', '')


def _fusion_layers() -> str:
    """'SegformerHead: decode_head.fusion_conv.*, UPerHead: ...'"""
    return ', '.join(f'{name}: decode_head.{split.fusion}.*'
                     for name, split in sorted(HEAD_SPLITS.items()))


def teacher_source_problem(path: str, ckpt, state: Dict) -> Optional[str]:
    """Why ``path`` cannot be converted into a teacher, or None for an
    MMSegmentation segmentor checkpoint whose decode head SDHA can split
    (a SegFormer, a UPerNet, any head of :data:`HEAD_SPLITS`).

    Args:
        path: the file (for the message).
        ckpt: the loaded file (to recognise deploy checkpoints).
        state: its tensors (:func:`extract_state_dict`).
    """
    use = f'model.siam_head.teacher_checkpoint={path}'
    meta = ckpt.get('meta') if isinstance(ckpt, dict) else None
    if isinstance(meta, dict) and 'sctnet_deploy' in meta:
        return (f'{path} is a deploy checkpoint of SCTNet (written by '
                'tools/deploy.py), not a SegFormer; a teacher comes from a '
                f'SegFormer checkpoint: {TRAIN_TEACHER}.')
    if not state:
        return (f'{path} holds no tensors; pass an MMSegmentation SegFormer '
                'checkpoint (work_dirs/<segformer>/iter_<N>.pth).')
    if _has(state, 'teacher_backbone.'):
        return (f'{path} is already a teacher file '
                f'({describe_teacher(state)}); nothing to convert: use it '
                f'directly, {use}.')
    if any('.teacher_backbone.' in k for k in state):
        teacher = extract_teacher_state_dict(state)
        return (f'{path} is a full SCTNet checkpoint trained with SIAM; it '
                f'already contains its {describe_teacher(teacher)} '
                '(auxiliary_head.1.teacher_*): use it directly, '
                f'{use}, or convert the checkpoint that teacher '
                'was trained as.')
    if _has(state, 'backbone.layer3_2.') or _has(state, 'backbone.convdown4.'):
        return (f'{path} is an SCTNet student checkpoint (no teacher '
                'inside), not a SegFormer: the teacher is a separate '
                f'SegFormer model; {TRAIN_TEACHER}.')
    has_bb, has_head = _has(state, 'backbone.'), _has(state, 'decode_head.')
    if not has_bb and not has_head:
        if _has(state, 'layers.0.0.'):
            kind = ('an ImageNet-pretrained MiT backbone (' +
                    mit_name(state, '') + ')')
        elif _has(state, 'patch_embed1.'):
            kind = 'an ImageNet-pretrained MiT backbone (SegFormer release)'
        else:
            kind = ('not an MMSegmentation segmentor (no backbone.* or '
                    f'decode_head.* tensors; e.g. {list(state)[:2]}); an '
                    'ImageNet backbone?')
        return (f'{path} is {kind}. A teacher is a SegFormer trained for '
                f'segmentation on your data: {TRAIN_TEACHER}.')
    if _has(state, 'head.fc.') or (has_bb and not has_head):
        return (f'{path} has backbone.* but no decode_head.* tensors (an '
                'image classifier or a backbone alone?), not a SegFormer '
                f'segmentor: {TRAIN_TEACHER}.')
    if _head_type(state, 'decode_head.') is not None:
        return None
    if MIT_PATCH_EMBED in state:
        heads = ' nor '.join(
            f'a {name} (no decode_head.{split.fusion}.*)'
            for name, split in sorted(HEAD_SPLITS.items(),
                                      key=lambda kv: kv[0] != 'SegformerHead'))
        return (f'{path} has a MiT backbone ({mit_name(state, "backbone.")})'
                f' but its decode head is not {heads}; SIAM runs the teacher '
                'head\'s fusion and classifier. Train the SegFormer with '
                'SegformerHead (configs/custom/segformer_mit-b0_custom.py), '
                'or register a split for your head (docs/siam.md).')
    first = next(k for k in state if k.startswith(('backbone.',
                                                  'decode_head.')))
    return (f'{path} is an MMSegmentation segmentor but not a SegFormer nor '
            'another teacher SIAM can run: its decode head has none of the '
            f'fusion layers SDHA runs ({_fusion_layers()}; the file starts '
            f'with {first}). Train the teacher with one of those heads '
            f'(e.g. {TRAIN_TEACHER}), or register a split for your head '
            '(docs/siam.md, "Distil your own student from your own '
            'teacher").')
