"""Compatibility layer applied when :mod:`mmseg_sctnet` is imported.

It must run before ``mmseg.models`` is imported:

1. :mod:`.mmcv_ops` gives ``mmcv.ops`` a fallback when only mmcv-lite is
   installed (MMSegmentation imports a few ops at module level).
2. :mod:`.safe_load` allow-lists exactly the objects that MMEngine and
   official mmcv-0.x checkpoints contain, and routes MMEngine's local
   checkpoint loading through ``torch.load(..., weights_only=True)``.
"""
import os.path as osp
import warnings

from .mmcv_ops import MissingCompiledOpError, has_compiled_ops
from .mmcv_ops import install as install_mmcv_ops_fallback
from .safe_load import (UnsafeCheckpointError, register_safe_globals,
                        safe_torch_load)

__all__ = [
    'apply', 'MissingCompiledOpError', 'UnsafeCheckpointError',
    'safe_torch_load', 'has_compiled_ops'
]

_APPLIED = False


def load_from_local_safe(filename, map_location):
    """MMEngine ``CheckpointLoader`` backend for local paths.

    Same contract as ``mmengine.runner.checkpoint.load_from_local`` but
    always ``weights_only=True`` with the project allow-list.
    """
    filename = osp.expanduser(filename)
    return safe_torch_load(filename, map_location=map_location)


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
    from mmengine.runner.checkpoint import CheckpointLoader
    CheckpointLoader.register_scheme(
        prefixes='', loader=load_from_local_safe, force=True)
    _APPLIED = True
