"""Export the backbone of an ImageNet pretraining checkpoint.

A pretraining run (``configs/pretrain/``, MMPretrain's ``ImageClassifier``
around the SCTNet backbone) saves MMEngine checkpoints whose
``state_dict`` holds ``backbone.*``, ``neck.*`` and ``head.*``. The
segmentation configs load ImageNet weights with
``model.backbone.init_cfg=dict(type='Pretrained', checkpoint=FILE)``.
:func:`export_backbone` writes ``FILE``: ``{'state_dict': {<backbone key>:
tensor}, 'meta': {...}}`` with the backbone's own (bare) key names, the
layout MMEngine's ``Pretrained`` init, ``SCTNet.init_weights`` and the
official release's mmcv loader all read.

EMA: with MMEngine's/MMPretrain's ``EMAHook`` the checkpoint's
``state_dict`` holds the *averaged* weights (the hook swaps them in before
saving) and ``ema_state_dict`` the raw ones under ``module.``. The EMA
weights are exported when present (``weights='auto'`` or ``'ema'``); the
raw weights with ``weights='raw'``.

Nothing partial is written: the file must provide every tensor (parameters
and BN buffers) of the SCTNet backbone it describes, with the right
shapes, or the export is refused naming the missing/extra/mismatched
tensors. The backbone is built from ``config`` (a pretraining or a
segmentation config: its ``model.backbone``) or, without one, from the
widths read off the tensors (``conv1`` -> ``base_channels``, ``spp`` ->
``spp_channels``, block counts of ``layer1..3``).
"""
import os.path as osp
import re
from collections import OrderedDict
from typing import Dict, Optional, Tuple

import torch

from mmengine.registry import DefaultScope
from mmseg.registry import MODELS

from ..io.checkpoint import read_checkpoint
from ..io.checksum import file_sha256
from ..io.config import load_config
from ..io.errors import CheckpointMismatchError
from ..io.files import (check_input_file, check_output_file, torch_bytes,
                        write_file)
from ..io.state_dict import explain_mismatch, find_mismatch

__all__ = [
    'select_backbone_state', 'infer_backbone_cfg', 'build_reference_backbone',
    'check_backbone_state', 'export_backbone'
]

WEIGHTS = ('auto', 'ema', 'raw')


def select_backbone_state(
        ckpt: dict,
        weights: str = 'auto',
        source: str = 'checkpoint') -> Tuple[Dict[str, torch.Tensor], str]:
    """The backbone tensors of a loaded pretraining checkpoint.

    Args:
        ckpt: the loaded checkpoint (MMEngine layout, ``state_dict`` with
            ``backbone.*``; ``ema_state_dict`` when trained with EMA).
        weights: ``'auto'`` (EMA when present), ``'ema'`` (refuse a file
            without EMA) or ``'raw'``.
        source: the file name, for messages.

    Returns:
        ``(state, which)``: bare backbone keys -> tensors, and ``'ema'`` or
        ``'raw'``.
    """
    if weights not in WEIGHTS:
        raise ValueError(f'weights must be one of {WEIGHTS}, got {weights!r}')
    if not isinstance(ckpt, dict) or not isinstance(
            ckpt.get('state_dict'), dict):
        raise CheckpointMismatchError(
            f'{source} is not an MMEngine training checkpoint (no '
            "'state_dict' dict); export the checkpoint that tools/train.py "
            'wrote for a configs/pretrain/ config.')
    has_ema = isinstance(ckpt.get('ema_state_dict'), dict)
    if weights == 'ema' and not has_ema:
        raise CheckpointMismatchError(
            f'{source} has no EMA weights (no ema_state_dict; was EMAHook '
            'in custom_hooks?). Export the raw weights with --weights raw.')
    if has_ema and weights == 'raw':
        # EMAHook stores the raw weights under ema_state_dict['module.*']
        full = OrderedDict((k[len('module.'):], v)
                           for k, v in ckpt['ema_state_dict'].items()
                           if k.startswith('module.'))
        which = 'raw'
    else:
        full = ckpt['state_dict']
        which = 'ema' if has_ema else 'raw'
    state = OrderedDict(
        (k[len('backbone.'):], v) for k, v in full.items()
        if k.startswith('backbone.') and isinstance(v, torch.Tensor))
    if not state:
        sample = ', '.join(list(full)[:3])
        raise CheckpointMismatchError(
            f'{source} has no backbone.* tensors (keys look like: {sample}); '
            'export a checkpoint of an ImageClassifier trained with a '
            'configs/pretrain/ config.')
    return state, which


def _first_dim(state, keys, dim=0) -> Optional[int]:
    for k in keys:
        if k in state and state[k].dim() > dim:
            return int(state[k].shape[dim])
    return None


def infer_backbone_cfg(state: Dict[str, torch.Tensor]) -> dict:
    """``SCTNet`` arguments that fit the tensor shapes of ``state``."""
    c = _first_dim(state,
                   ('conv1.0.weight', 'conv1.1.weight', 'conv1.3.weight',
                    'conv1.4.weight', 'layer1.0.conv1.weight'))
    spp = _first_dim(state, ('spp.scale0.2.weight', 'spp.scale1.3.weight',
                             'spp.process1.2.weight', 'spp.scale4.3.weight'))
    if c is None or spp is None:
        raise CheckpointMismatchError(
            'cannot tell the SCTNet widths from the backbone tensors '
            f'(conv1.* {"found" if c else "missing"}, spp.* '
            f'{"found" if spp else "missing"}); pass the config the '
            'weights belong to (--config).')
    in_ch = _first_dim(state, ('conv1.0.weight', ), dim=1) or 3
    layer_nums = []
    for i in (1, 2, 3):
        idx = [
            int(m.group(1))
            for m in (re.match(rf'layer{i}\.(\d+)\.', k) for k in state) if m
        ]
        layer_nums.append(max(idx) + 1 if idx else 2)
    return dict(
        type='SCTNet',
        base_channels=c,
        spp_channels=spp,
        in_channels=in_ch,
        layer_nums=layer_nums + [2])


def build_reference_backbone(backbone_cfg: dict) -> torch.nn.Module:
    """Build ``backbone_cfg`` (``SCTNet`` or ``mmseg.SCTNet``) without
    loading any weights."""
    cfg = dict(backbone_cfg)
    cfg['init_cfg'] = None
    cfg.pop('pretrained', None)
    if isinstance(cfg.get('type'), str) and cfg['type'].startswith('mmseg.'):
        cfg['type'] = cfg['type'][len('mmseg.'):]
    with DefaultScope.overwrite_default_scope('mmseg'):
        return MODELS.build(cfg)


def check_backbone_state(state: Dict[str, torch.Tensor],
                         reference: torch.nn.Module,
                         source: str = 'checkpoint') -> None:
    """Refuse ``state`` unless it has exactly the tensors of ``reference``
    (names and shapes; BN ``num_batches_tracked`` counters excepted, as in
    strict pretrained loading), i.e. ``SCTNet``'s ``init_cfg.strict=True``
    loading would accept it and no tensor would keep its random
    initialisation. The message names the tensors
    (:func:`~mmseg_sctnet.io.state_dict.explain_mismatch`)."""
    own = reference.state_dict()
    mismatch = find_mismatch(own, state)
    if any(mismatch.values()):
        raise CheckpointMismatchError(
            explain_mismatch(
                f'{source} does not cover the SCTNet backbone exactly (a '
                'backbone loaded from it would keep random weights)',
                mismatch,
                len(own),
                state.keys(),
                fix='Export a complete checkpoint of a configs/pretrain/ '
                'run, or pass --config with the backbone the weights '
                'belong to.'))


def export_backbone(src: str,
                    dst: str,
                    config: Optional[str] = None,
                    weights: str = 'auto',
                    force: bool = False) -> dict:
    """Write the backbone of pretraining checkpoint ``src`` to ``dst``.

    Args:
        src: checkpoint written by ``tools/train.py`` for a
            ``configs/pretrain/`` config (read with ``weights_only=True``).
        dst: output file; never ``src`` (nor a link to it); an existing
            file is replaced only with ``force``; it appears complete or
            not at all.
        config: optional config whose ``model.backbone`` the weights must
            fit exactly (pretraining or segmentation config).
        weights: ``'auto'``, ``'ema'`` or ``'raw'`` (see module doc).
        force: replace an existing ``dst`` (never ``src``).

    Returns:
        dict with ``dst``, ``weights`` (``'ema'``/``'raw'``),
        ``num_tensors`` and ``backbone`` (the checked backbone config).

    Raises:
        UserError: a missing/damaged input or config, an output that must
            not or cannot be written, or a checkpoint that does not cover
            the backbone exactly (the tensors are named).
    """
    check_input_file(src, 'checkpoint')
    check_output_file(dst, inputs=[src], overwrite=force)
    cfg = load_config(config) if config is not None else None
    ckpt = read_checkpoint(src)
    state, which = select_backbone_state(ckpt, weights, source=src)
    if cfg is not None:
        backbone_cfg = dict(cfg.model.backbone)
    else:
        backbone_cfg = infer_backbone_cfg(state)
    reference = build_reference_backbone(backbone_cfg)
    check_backbone_state(state, reference, source=src)
    src_meta = ckpt.get('meta') if isinstance(ckpt.get('meta'), dict) else {}
    meta = dict(
        source=osp.basename(src),
        source_sha256=file_sha256(src),
        weights=which,
        epoch=src_meta.get('epoch'),
        iter=src_meta.get('iter'),
        backbone={
            k: v
            for k, v in backbone_cfg.items()
            if isinstance(v, (int, float, str, list, tuple))
        })
    out = dict(
        state_dict=OrderedDict(
            (k, v.detach().clone().contiguous()) for k, v in state.items()),
        meta=meta)
    write_file(dst, torch_bytes(out), overwrite=force, inputs=[src])
    which_text = {
        'ema': 'EMA weights',
        'raw': 'raw weights' + (' (no EMA in the checkpoint)'
                                if weights == 'auto' else '')
    }[which]
    arch = ', '.join(f'{k}={v}' for k, v in meta['backbone'].items()
                     if k != 'type')
    print(f'exported {len(state)} backbone tensors ({which_text}; every '
          f'tensor of SCTNet({arch}) present) to {dst}')
    return dict(
        dst=dst,
        weights=which,
        num_tensors=len(state),
        backbone=meta['backbone'])
