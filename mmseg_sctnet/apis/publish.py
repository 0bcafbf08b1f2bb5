"""Training checkpoint -> release file named by its SHA-256
(``tools/publish_model.py``).

The release keeps what deploys and fine-tunes -- the student
(``backbone.*``, ``decode_head.*``), the auxiliary head
(``auxiliary_head.0.*``) and the SIAM projections
(``auxiliary_head.1.{feature_transforms,convstage3,convstage4}.*``), the
layout of the official release -- or, with ``student_only``, the student
alone. Dropped: the frozen teacher (``*teacher_*``), the optimizer,
message hub, schedulers, RNG states and run-specific meta; kept meta: the
dataset meta (classes, palette), the config text and the iteration.

The file is written as ``OUT-<sha8>.pth`` (the first 8 hex digits of the
SHA-256 of its bytes, the MMSegmentation / torch.hub convention), complete
or not at all, and never over an existing file or the input.
"""
import hashlib
import os.path as osp
from collections import OrderedDict

from ..deploy.model import is_deploy_checkpoint
from ..io.checkpoint import read_checkpoint
from ..io.checksum import file_sha256
from ..io.errors import CheckpointMismatchError, PathError, UserError
from ..io.files import (check_input_file, check_output_file, same_file,
                        torch_bytes, write_file)
from ..io.state_dict import extract_state_dict

__all__ = ['publish_model', 'select_state', 'published_name']

KEEP_META = ('dataset_meta', 'CLASSES', 'PALETTE', 'cfg', 'config', 'iter',
             'epoch', 'seed', 'experiment_name', 'time', 'mmengine_version',
             'mmcv_version', 'mmseg_version')
TRAINING_STATE = ('optimizer', 'message_hub', 'param_schedulers',
                  'rng_state')


def is_teacher_key(key: str) -> bool:
    return key.startswith('teacher_') or '.teacher_' in key


def select_state(state, student_only=False):
    """``(kept, dropped_groups)`` of a segmentor state dict."""
    kept, dropped = OrderedDict(), OrderedDict()
    for k, v in state.items():
        if is_teacher_key(k):
            group = 'teacher'
        elif k.startswith(('backbone.', 'decode_head.')) or not student_only:
            kept[k] = v  # student, auxiliary head, SIAM projections, neck
            continue
        else:
            group = 'training-only heads'
        dropped[group] = dropped.get(group, 0) + 1
    return kept, dropped


def published_name(out: str, sha: str) -> str:
    stem = out[:-4] if out.endswith('.pth') else out
    return f'{stem}-{sha[:8]}.pth'


def _segmentor_state(src: str, ckpt: dict) -> OrderedDict:
    if is_deploy_checkpoint(ckpt):
        raise CheckpointMismatchError(
            f'{src} is a deploy checkpoint (tools/deploy.py output); publish '
            'the training checkpoint it was made from (iter_N.pth), and '
            'deploy the published file.')
    state = extract_state_dict(ckpt)
    if state and all(k.startswith('teacher_') for k in state):
        raise CheckpointMismatchError(
            f'{src} is a teacher file (tools/pth_convert.py output), not a '
            'segmentor checkpoint; publish the iter_N.pth that '
            'tools/train.py wrote.')
    if 'decode_head.conv_seg.weight' not in state:
        raise CheckpointMismatchError(
            f'{src} is not a segmentor checkpoint (no '
            'decode_head.conv_seg.weight among its '
            f'{len(state)} tensors); publish the iter_N.pth that '
            'tools/train.py wrote.')
    return state


def publish_model(src: str, out: str, student_only: bool = False) -> str:
    """Write the release file of the checkpoint ``src`` as
    ``OUT-<sha8>.pth`` and print what was kept, dropped and written.

    Publishing the same content again writes nothing. Returns the path of
    the release file.

    Raises:
        UserError: a missing/damaged/non-segmentor input, an ``out`` that
            names the input or a folder, an unwritable folder, or a
            release file of that name with other content.
    """
    check_input_file(src, 'checkpoint')
    check_output_file(out, inputs=[src], overwrite=True, what='release name')
    ckpt = read_checkpoint(src)
    state = _segmentor_state(src, ckpt)
    kept, dropped = select_state(state, student_only)
    meta = {
        k: v
        for k, v in (ckpt.get('meta') or {}).items() if k in KEEP_META
    }
    source_sha = file_sha256(src)
    meta['published'] = dict(
        source=osp.basename(src),
        source_sha256=source_sha,
        student_only=bool(student_only),
        dropped=dict(dropped))
    top_dropped = [k for k in ckpt if k in TRAINING_STATE]
    data = torch_bytes(dict(meta=meta, state_dict=kept))
    sha = hashlib.sha256(data).hexdigest()
    final = published_name(out, sha)
    if same_file(final, src):
        raise PathError(f'the release file {final} would be the input {src} '
                        'itself; choose another OUT name.')
    if osp.lexists(final):
        if osp.isfile(final) and file_sha256(final) == sha:
            print(f'{final} already exists with the same content '
                  f'(sha256 {sha}); nothing written.')
            return final
        raise UserError(
            f'{final} exists with other content; refusing to overwrite '
            'it. Choose another OUT name or move that file away.')
    write_file(final, data, overwrite=False, inputs=[src])
    # read back what was written, the way every loader reads it
    back = read_checkpoint(final, log_checksum=False)
    assert list(back['state_dict']) == list(kept)
    groups = OrderedDict()
    for k in kept:
        g = k.split('.')[0]
        if k.startswith('auxiliary_head.1.'):
            g = 'SIAM projections'
        elif k.startswith('auxiliary_head.'):
            g = 'auxiliary head'
        groups[g] = groups.get(g, 0) + 1
    n_params = sum(v.numel() for v in kept.values())
    print(f'kept     {len(kept)} tensors, {n_params:,} values: ' +
          ', '.join(f'{g} {n}' for g, n in groups.items()))
    print('dropped  ' +
          ', '.join([f'{g} ({n} tensors)'
                     for g, n in dropped.items()] + top_dropped)
          if dropped or top_dropped else 'dropped  nothing')
    print(f'source   {src} (sha256 {source_sha})')
    print(f'wrote    {final} ({len(data) / 2**20:.1f} MiB)')
    print(f'sha256   {sha}')
    print(f'verify   sha256sum {final}')
    return final
