"""Compatibility with the library versions this plugin runs on.

MMSegmentation 1.2.2 asserts ``mmcv < 2.2.0`` and imports a few names from
``mmcv.ops`` at module level; mmcv 2.1.0 cannot be built against current
torch, so the plugin runs on ``mmcv-lite`` 2.1.0 (no compiled ops).
:func:`apply` gives ``mmcv.ops`` a fallback (:mod:`.mmcv_ops`) and must
run before ``mmseg.models`` is imported: ``import mmseg_sctnet`` does it
first. Nothing is replaced when a full mmcv is installed.
"""
import warnings

from .mmcv_ops import MissingCompiledOpError, has_compiled_ops
from .mmcv_ops import install as install_mmcv_ops_fallback

__all__ = ['apply', 'MissingCompiledOpError', 'has_compiled_ops']

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
    _APPLIED = True
