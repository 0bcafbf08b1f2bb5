"""Which checkpoint ``--resume`` (without a path) continues from.

MMEngine's automatic resume reads ``work_dir/last_checkpoint`` and loads
whatever it names. When that pointer is missing, empty or names a file that
was deleted, it either starts from scratch or fails. The train entry point
calls :func:`resolve_auto_resume` before the runner is built: it picks the
checkpoint (the pointer when it names an existing file, else the newest
``iter_N.pth`` / ``epoch_N.pth`` in the work dir) and sets ``cfg.load_from``
to it, so MMEngine resumes from that explicit path. MMEngine's own
``find_latest_checkpoint`` is not modified.
"""
import os
import os.path as osp
import re
from typing import Optional

from mmengine.logging import print_log

__all__ = ['find_resume_checkpoint', 'resolve_auto_resume']

_CKPT_RE = re.compile(r'^(iter|epoch)_(\d+)\.pth$')


def find_resume_checkpoint(work_dir: str) -> Optional[str]:
    """The checkpoint to resume from in ``work_dir``, or None.

    ``work_dir/last_checkpoint`` when it names an existing file (or a
    ``scheme://`` path, which cannot be checked here); otherwise the newest
    ``iter_N.pth`` / ``epoch_N.pth`` in ``work_dir``, with a warning that
    says why the pointer was not used.
    """
    pointer = osp.join(work_dir, 'last_checkpoint')
    named = None
    if osp.isfile(pointer):
        with open(pointer) as f:
            named = f.read().strip() or None
    if named is not None and ('://' in named or osp.isfile(named)):
        return named
    found = []
    for name in os.listdir(work_dir) if osp.isdir(work_dir) else []:
        m = _CKPT_RE.match(name)
        if m:
            found.append((int(m.group(2)), osp.join(work_dir, name)))
    why = (f'names {named}, which does not exist'
           if named else 'is missing or empty')
    if not found:
        if named is not None:
            print_log(
                f'{pointer} {why}, and there is no iter_*.pth / '
                f'epoch_*.pth in {work_dir}: nothing to resume from.',
                logger='current',
                level=30)
        return None
    latest = max(found)[1]
    print_log(
        f'{pointer} {why}; resuming from the newest checkpoint in the '
        f'folder, {latest}.',
        logger='current',
        level=30)
    return latest


def resolve_auto_resume(cfg) -> Optional[str]:
    """Turn ``resume=True, load_from=None`` into an explicit checkpoint.

    Call it on the final config (``work_dir`` set) before building the
    runner. With ``cfg.resume`` true and no ``cfg.load_from``, sets
    ``cfg.load_from`` to :func:`find_resume_checkpoint`'s answer; when
    there is nothing to resume from, sets ``cfg.resume = False`` (training
    starts from scratch, as MMEngine does without a pointer) and says so.
    Returns the checkpoint (None when nothing changes or nothing is found).
    """
    if not cfg.get('resume', False) or cfg.get('load_from', None):
        return None
    ckpt = find_resume_checkpoint(cfg.work_dir)
    if ckpt is None:
        print_log(
            f'--resume: no checkpoint in {cfg.work_dir}; training starts '
            'from the beginning.',
            logger='current')
        cfg.resume = False
        return None
    print_log(f'Auto resume: resuming from {ckpt}.', logger='current')
    cfg.load_from = ckpt
    return ckpt
