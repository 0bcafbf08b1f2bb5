"""The norm layer config of the SCTNet modules."""
from typing import Optional


def resolve_norm_cfg(norm_cfg: Optional[dict]) -> dict:
    """``norm_cfg`` (copied), or trainable BN when None."""
    return dict(norm_cfg) if norm_cfg is not None else dict(
        type='BN', requires_grad=True)
