"""Helpers shared by the SCTNet modules."""
import os.path as osp
from collections import OrderedDict
from typing import Dict, Optional

import torch
from mmengine.logging import print_log


def extract_state_dict(checkpoint) -> Dict[str, torch.Tensor]:
    """The parameter dict inside a loaded checkpoint, ``module.`` stripped.

    Accepts MMEngine/mmcv checkpoints (``state_dict``), timm/DeiT style files
    (``model``) and bare state dicts.
    """
    if not isinstance(checkpoint, dict):
        raise TypeError(f'expected a dict checkpoint, got {type(checkpoint)}')
    for key in ('state_dict', 'model', 'model_state'):
        if key in checkpoint and isinstance(checkpoint[key], dict):
            checkpoint = checkpoint[key]
            break
    out = OrderedDict()
    for k, v in checkpoint.items():
        if not isinstance(v, torch.Tensor):
            continue
        out[k[7:] if k.startswith('module.') else k] = v
    return out


def load_partial_state_dict(module: torch.nn.Module,
                            filename: str,
                            prefixes=('backbone.', ),
                            what: str = 'checkpoint',
                            hint: str = '',
                            logger: str = 'current') -> Dict[str, list]:
    """Load the matching tensors of ``filename`` into ``module``.

    Keys may carry one of ``prefixes`` (e.g. a whole-segmentor checkpoint);
    it is stripped when the bare keys are not found. Tensors whose shape
    differs are skipped and reported. Raises a clear error when the file is
    missing or when nothing in it matches ``module``.

    Returns:
        dict with ``missing``, ``unexpected`` and ``mismatched`` key lists.
    """
    from mmseg_sctnet.compat import safe_torch_load
    from mmseg_sctnet.compat.errors import (CheckpointMismatchError,
                                            CheckpointNotFoundError)
    if not osp.isfile(filename):
        raise CheckpointNotFoundError(
            f'{what} not found: {filename!r} (resolved to '
            f'{osp.abspath(filename)!r}). {hint}')
    state = extract_state_dict(safe_torch_load(filename, map_location='cpu'))
    own = module.state_dict()
    for prefix in prefixes:
        if not any(k in own for k in state) and any(
                k.startswith(prefix) for k in state):
            state = OrderedDict((k[len(prefix):], v) for k, v in state.items()
                                if k.startswith(prefix))
    to_load, mismatched = OrderedDict(), []
    for k, v in state.items():
        if k in own:
            if own[k].shape == v.shape:
                to_load[k] = v
            else:
                mismatched.append(
                    f'{k}: file {tuple(v.shape)} vs model {tuple(own[k].shape)}')
    if not to_load:
        raise CheckpointMismatchError(
            f'{what} {filename!r} has no tensor that matches this model '
            f'({len(state)} tensors in the file, e.g. {list(state)[:3]}). '
            f'{hint}')
    module.load_state_dict(to_load, strict=False)
    missing = [k for k in own if k not in to_load]
    unexpected = [k for k in state if k not in own]
    print_log(
        f'Loaded {len(to_load)}/{len(own)} tensors of {what} {filename}'
        + (f'; missing {len(missing)} (e.g. {missing[:3]})' if missing else '')
        + (f'; unused {len(unexpected)}' if unexpected else '')
        + (f'; shape mismatch {mismatched}' if mismatched else ''),
        logger=logger)
    return dict(missing=missing, unexpected=unexpected, mismatched=mismatched)


def resolve_norm_cfg(norm_cfg: Optional[dict]) -> dict:
    """``norm_cfg`` or plain BN when None."""
    return dict(norm_cfg) if norm_cfg is not None else dict(
        type='BN', requires_grad=True)
