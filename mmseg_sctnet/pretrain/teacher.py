"""Teacher checkpoint -> SCTNet teacher file (``tools/pth_convert.py``).

The teacher of SIAM is an MMSegmentation segmentor trained on the
student's dataset: a SegFormer (``MixVisionTransformer`` +
``SegformerHead``) as in the paper, or another backbone with a decode head
whose split SDHA knows (``UPerHead``, e.g. a ConvNeXt or Swin UPerNet; see
:mod:`~mmseg_sctnet.models.decode_heads.teacher_head_split`). The official
``tools/pth_convert.py`` renames ``backbone.*`` to ``teacher_backbone.*``
and ``decode_head.*`` to ``teacher_head.*`` and drops the rest; the file
is then given as ``model.siam_head.teacher_checkpoint``.

:func:`convert_teacher` does the same after making sure the input *is*
such a segmentor: every other kind of file a user may have at hand (an
SCTNet checkpoint with or without its teacher, an already converted
teacher, an ImageNet backbone, an MMSegmentation model whose decode head
SDHA cannot split, a deploy checkpoint) is refused with one message that
says what the file is and what to pass instead
(:func:`~mmseg_sctnet.models.decode_heads.teacher_files.
teacher_source_problem`).
"""
import os.path as osp
from collections import OrderedDict

from ..io.checkpoint import read_checkpoint
from ..io.errors import CheckpointMismatchError
from ..io.files import (check_input_file, check_output_file, torch_bytes,
                        write_file)
from ..io.state_dict import extract_state_dict
from ..models.decode_heads.teacher_files import (describe_teacher,
                                                 extract_teacher_state_dict,
                                                 teacher_source_problem)

__all__ = ['convert_teacher']


def convert_teacher(src: str, dst: str, force: bool = False) -> dict:
    """Write the teacher file ``dst`` from the teacher checkpoint ``src``
    (a SegFormer, or another segmentor with a splittable decode head).

    ``dst`` is never ``src`` (nor a link to it), is replaced only with
    ``force``, and appears complete or not at all. Prints what was mapped
    and dropped.

    Returns:
        dict: ``mapped`` (tensors written), ``dropped`` (key groups and
        counts), ``classes``, ``teacher`` (e.g. 'MiT-B0 teacher (...)',
        'ConvNeXt (...) teacher with a UPerHead').

    Raises:
        UserError: a missing/damaged input, an input that is no teacher
            (what it is and what to pass instead), or an output
            that cannot or must not be written.
    """
    check_input_file(src, 'checkpoint')
    check_output_file(dst, inputs=[src], overwrite=force)
    ckpt = read_checkpoint(src)
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
    teacher = describe_teacher(converted)
    print(f'{teacher}, {classes} classes')
    write_file(dst, torch_bytes(converted), overwrite=force, inputs=[src])
    print(f'saved {dst}')
    return dict(
        mapped=len(converted),
        dropped=dict(dropped),
        classes=classes,
        teacher=teacher,
        output=osp.abspath(dst))
