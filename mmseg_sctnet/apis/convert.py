"""SegFormer checkpoint -> SCTNet teacher file (``tools/pth_convert.py``).

The teacher of SIAM is a SegFormer (MMSegmentation ``MixVisionTransformer``
+ ``SegformerHead``) trained on the student's dataset. The official
``tools/pth_convert.py`` renames ``backbone.*`` to ``teacher_backbone.*``
and ``decode_head.*`` to ``teacher_head.*`` and drops the rest; the file
is then given as ``model.siam_head.teacher_checkpoint``.

:func:`convert_teacher` does the same after making sure the input *is*
such a SegFormer: every other kind of file a user may have at hand (an
SCTNet checkpoint with or without its teacher, an already converted
teacher, an ImageNet backbone, another MMSegmentation model, a deploy
checkpoint) is refused with one message that says what the file is and
what to pass instead (:func:`teacher_source_problem`).
"""
import os.path as osp
from collections import OrderedDict
from typing import Dict, Optional

from mmseg_sctnet.compat.errors import CheckpointMismatchError

from ..models.decode_heads.vit_guidance_head import (
    _describe_mit, extract_teacher_state_dict)
from ..models.utils import extract_state_dict
from .files import (check_input_file, check_output_file, load_checkpoint_file,
                    torch_bytes, write_file)

__all__ = ['convert_teacher', 'teacher_source_problem']

MIT_PATCH_EMBED = 'backbone.layers.0.0.projection.weight'
SEGFORMER_FUSION = 'decode_head.fusion_conv.conv.weight'
TRAIN_TEACHER = ('train a SegFormer on your dataset with MMSegmentation '
                 '(python tools/train.py configs/custom/'
                 'segformer_mit-b0_custom.py) and convert its '
                 'work_dirs/<segformer>/iter_<N>.pth')


def _has(state, prefix: str) -> bool:
    return any(k.startswith(prefix) for k in state)


def _mit_name(state, prefix: str) -> str:
    """'MiT-B2 (stage widths ..., depths ...)' of the MiT under prefix."""
    teacher = OrderedDict(('teacher_backbone.' + k[len(prefix):], v)
                          for k, v in state.items()
                          if k.startswith(prefix))
    return _describe_mit(teacher).replace(' teacher', '')


def teacher_source_problem(path: str, ckpt, state: Dict) -> Optional[str]:
    """Why ``path`` cannot be converted into a teacher, or None for an
    MMSegmentation SegFormer checkpoint.

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
                f'({_describe_mit(state)}); nothing to convert: use it '
                f'directly, {use}.')
    if any('.teacher_backbone.' in k for k in state):
        teacher = extract_teacher_state_dict(state)
        return (f'{path} is a full SCTNet checkpoint trained with SIAM; it '
                f'already contains its {_describe_mit(teacher)} '
                '(auxiliary_head.1.teacher_*): use it directly, '
                f'{use}, or convert the SegFormer checkpoint that teacher '
                'was trained as.')
    if _has(state, 'backbone.layer3_2.') or _has(state, 'backbone.convdown4.'):
        return (f'{path} is an SCTNet student checkpoint (no teacher '
                'inside), not a SegFormer: the teacher is a separate '
                f'SegFormer model; {TRAIN_TEACHER}.')
    has_bb, has_head = _has(state, 'backbone.'), _has(state, 'decode_head.')
    if not has_bb and not has_head:
        if _has(state, 'layers.0.0.'):
            kind = ('an ImageNet-pretrained MiT backbone (' +
                    _mit_name(state, '') + ')')
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
    if MIT_PATCH_EMBED not in state:
        first = next(k for k in state if k.startswith('backbone.'))
        return (f'{path} is an MMSegmentation segmentor but not a SegFormer: '
                'its backbone has no MixVisionTransformer patch embedding '
                f'({MIT_PATCH_EMBED}; it starts with {first}). SIAM needs a '
                f'SegFormer teacher: {TRAIN_TEACHER}.')
    if SEGFORMER_FUSION not in state:
        return (f'{path} has a MiT backbone ({_mit_name(state, "backbone.")})'
                ' but its decode head is not a SegformerHead (no '
                f'{SEGFORMER_FUSION}); SIAM runs the teacher head\'s '
                'fusion_conv and classifier. Train the SegFormer with '
                'SegformerHead (configs/custom/segformer_mit-b0_custom.py).')
    return None


def convert_teacher(src: str, dst: str, force: bool = False) -> dict:
    """Write the teacher file ``dst`` from the SegFormer checkpoint ``src``.

    ``dst`` is never ``src`` (nor a link to it), is replaced only with
    ``force``, and appears complete or not at all. Prints what was mapped
    and dropped.

    Returns:
        dict: ``mapped`` (tensors written), ``dropped`` (key groups and
        counts), ``classes``, ``teacher`` (e.g. 'MiT-B0 teacher (...)').

    Raises:
        UserError: a missing/damaged input, an input that is not a
            SegFormer (what it is and what to pass instead), or an output
            that cannot or must not be written.
    """
    check_input_file(src, 'checkpoint')
    check_output_file(dst, inputs=[src], overwrite=force)
    ckpt = load_checkpoint_file(src)
    if not isinstance(ckpt, dict):
        raise CheckpointMismatchError(
            f'{src} holds a {type(ckpt).__name__}, not a checkpoint dict; '
            'pass an MMSegmentation SegFormer checkpoint.')
    state = extract_state_dict(ckpt)
    problem = teacher_source_problem(src, ckpt, state)
    if problem:
        raise CheckpointMismatchError(problem)
    converted = extract_teacher_state_dict(state)
    dropped = OrderedDict()
    for k in state:
        if not k.startswith(('backbone.', 'decode_head.')):
            g = k.split('.')[0]
            dropped[g] = dropped.get(g, 0) + 1
    n_bb = sum(k.startswith('teacher_backbone.') for k in converted)
    print(f'mapped backbone.*    -> teacher_backbone.*  {n_bb} tensors')
    print(f'mapped decode_head.* -> teacher_head.*      '
          f'{len(converted) - n_bb} tensors')
    for g, n in dropped.items():
        print(f'dropped {g}.*  {n} tensors')
    cls = converted.get('teacher_head.conv_seg.weight')
    classes = int(cls.shape[0]) if cls is not None else None
    teacher = _describe_mit(converted)
    print(f'{teacher}, {classes} classes')
    write_file(dst, torch_bytes(converted), overwrite=force, inputs=[src])
    print(f'saved {dst}')
    return dict(
        mapped=len(converted),
        dropped=dict(dropped),
        classes=classes,
        teacher=teacher,
        output=osp.abspath(dst))
