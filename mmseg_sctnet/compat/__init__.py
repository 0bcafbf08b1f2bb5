"""Compatibility layer applied when :mod:`mmseg_sctnet` is imported.

It must run before ``mmseg.models`` is imported:

1. :mod:`.mmcv_ops` gives ``mmcv.ops`` a fallback when only mmcv-lite is
   installed (MMSegmentation imports a few ops at module level).
2. :mod:`.safe_load` allow-lists exactly the objects that MMEngine and
   official mmcv-0.x checkpoints contain; :mod:`.checkpoint_schemes`
   registers, through ``CheckpointLoader.register_scheme``, a loader for
   every scheme MMEngine knows (local paths, ``http(s)://``,
   ``torchvision://``, ``open-mmlab://``, ``mmcls://``, ``pavi://``,
   ``s3://``) that reads with ``torch.load(..., weights_only=True)``; the
   SHA-256 of every loaded file is logged (:mod:`.checksum`).

Nothing of MMEngine is replaced: crash-safe checkpoint writing is a
component the configs name (:class:`mmseg_sctnet.engine.AtomicCheckpointHook`
with the ``'atomic_local'`` file backend of :mod:`.atomic_io`).

Errors a user can fix derive from :class:`UserError` (:mod:`.errors`).
"""
import warnings

from . import atomic_io
from .checkpoint_schemes import (load_from_http_safe, load_from_local_safe,
                                 register_safe_schemes)
from .checksum import file_sha256
from .errors import (CheckpointFileError, CheckpointIncompleteError,
                     CheckpointMismatchError, CheckpointNotFoundError,
                     DatasetCheckError, NonFiniteLossError,
                     NotACheckpointError, UnsafeCheckpointError, UserError,
                     exit_on_user_error)
from .mmcv_ops import MissingCompiledOpError, has_compiled_ops
from .mmcv_ops import install as install_mmcv_ops_fallback
from .safe_load import (read_checkpoint, register_safe_globals,
                        safe_torch_load)

__all__ = [
    'apply', 'MissingCompiledOpError', 'UnsafeCheckpointError',
    'safe_torch_load', 'has_compiled_ops', 'file_sha256', 'UserError',
    'CheckpointNotFoundError', 'CheckpointMismatchError', 'NonFiniteLossError',
    'DatasetCheckError', 'exit_on_user_error', 'atomic_io', 'read_checkpoint',
    'CheckpointFileError', 'CheckpointIncompleteError', 'NotACheckpointError',
    'load_from_local_safe', 'load_from_http_safe'
]

_APPLIED = False


def apply() -> None:
    """Apply the compatibility layer (idempotent)."""
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
    register_safe_schemes()
    _APPLIED = True
