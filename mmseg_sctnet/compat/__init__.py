"""Compatibility layer applied when :mod:`mmseg_sctnet` is imported.

It must run before ``mmseg.models`` is imported:

1. :mod:`.mmcv_ops` gives ``mmcv.ops`` a fallback when only mmcv-lite is
   installed (MMSegmentation imports a few ops at module level).
2. :mod:`.safe_load` allow-lists exactly the objects that MMEngine and
   official mmcv-0.x checkpoints contain, and routes MMEngine's checkpoint
   loading (local paths and ``http(s)://``, which ``torchvision://``,
   ``open-mmlab://`` and ``mmcls://`` resolve to) through
   ``torch.load(..., weights_only=True)``; the SHA-256 of every loaded file
   is logged (:mod:`.checksum`).
3. :mod:`.atomic_io` makes checkpoint writes (and MMEngine's
   ``last_checkpoint`` pointer) atomic, so a killed run leaves only complete
   checkpoints.

Errors a user can fix derive from :class:`UserError` (:mod:`.errors`).
"""
import os
import os.path as osp
import warnings

from . import atomic_io
from .checksum import file_sha256
from .errors import (CheckpointMismatchError, CheckpointNotFoundError,
                     DatasetCheckError, NonFiniteLossError,
                     UnsafeCheckpointError, UserError, exit_on_user_error)
from .mmcv_ops import MissingCompiledOpError, has_compiled_ops
from .mmcv_ops import install as install_mmcv_ops_fallback
from .safe_load import register_safe_globals, safe_torch_load

__all__ = [
    'apply', 'MissingCompiledOpError', 'UnsafeCheckpointError',
    'safe_torch_load', 'has_compiled_ops', 'file_sha256', 'UserError',
    'CheckpointNotFoundError', 'CheckpointMismatchError', 'NonFiniteLossError',
    'DatasetCheckError', 'exit_on_user_error', 'atomic_io'
]

_APPLIED = False


def load_from_local_safe(filename, map_location):
    """MMEngine ``CheckpointLoader`` backend for local paths.

    Same contract as ``mmengine.runner.checkpoint.load_from_local`` but
    always ``weights_only=True`` with the project allow-list. A bare state
    dict (what the official ``pth_convert.py`` or ``torch.save(model
    .state_dict())`` write) is returned as ``{'state_dict': ..., 'meta':
    {}}`` and a missing ``meta`` is added, so ``mmseg.apis.init_model``
    (which reads ``checkpoint['meta']``) accepts such files.
    """
    import torch
    filename = osp.expanduser(filename)
    ckpt = safe_torch_load(filename, map_location=map_location)
    if isinstance(ckpt, dict):
        if 'state_dict' not in ckpt and ckpt and all(
                isinstance(v, torch.Tensor) for v in ckpt.values()):
            ckpt = {'state_dict': ckpt}
        if 'state_dict' in ckpt:
            ckpt.setdefault('meta', {})
    return ckpt


def load_from_http_safe(filename,
                        map_location=None,
                        model_dir=None,
                        progress=None):
    """MMEngine ``CheckpointLoader`` backend for ``http(s)://`` URLs.

    Downloads into the torch hub cache (``<hub dir>/checkpoints``, the
    place ``torch.hub.load_state_dict_from_url`` uses; local rank 0 first)
    and loads the file with :func:`safe_torch_load`. MMEngine's own loader
    calls ``load_state_dict_from_url``, whose default is
    ``weights_only=False``.
    """
    from urllib.parse import urlparse

    import torch
    from mmengine.dist import get_dist_info
    if model_dir is None:
        model_dir = osp.join(torch.hub.get_dir(), 'checkpoints')
    cached = osp.join(model_dir, osp.basename(urlparse(filename).path))
    rank, world_size = get_dist_info()

    def download():
        if not osp.exists(cached):
            os.makedirs(model_dir, exist_ok=True)
            torch.hub.download_url_to_file(
                filename,
                cached,
                progress=os.isatty(0) if progress is None else progress)

    if rank == 0:
        download()
    if world_size > 1:
        torch.distributed.barrier()
        if rank > 0:
            download()
    return safe_torch_load(cached, map_location=map_location)


def apply() -> None:
    """Apply the compatibility patches (idempotent)."""
    global _APPLIED
    if _APPLIED:
        return
    if install_mmcv_ops_fallback():
        # mmcv's transformer bricks warn once that the deformable attention
        # op is missing; with the fallback in place that is expected.
        with warnings.catch_warnings():
            warnings.filterwarnings(
                'ignore', message='.*MultiScaleDeformableAttention.*')
            import mmcv.cnn.bricks.transformer  # noqa: F401
    register_safe_globals()
    import mmengine.runner.checkpoint as ckpt_mod
    ckpt_mod.CheckpointLoader.register_scheme(
        prefixes='', loader=load_from_local_safe, force=True)
    ckpt_mod.CheckpointLoader.register_scheme(
        prefixes=('http://', 'https://'),
        loader=load_from_http_safe,
        force=True)
    # torchvision://, open-mmlab://, mmcls:// call this module global
    ckpt_mod.load_from_http = load_from_http_safe
    atomic_io.install()
    _APPLIED = True
