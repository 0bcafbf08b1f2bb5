"""Trained checkpoint -> deploy checkpoint (``tools/deploy.py``).

The deployed model (:func:`mmseg_sctnet.deploy.switch_to_deploy`:
training-only heads removed, BatchNorms folded exactly, lean attention,
channels-last) is checked against the eager model on a random input and
written with the deploy options in ``meta``
(:func:`~mmseg_sctnet.deploy.save_deploy_checkpoint`), so
``mmseg_sctnet.deploy.load_inference_model``, ``tools/export_onnx.py`` and
``speed/torch_speed.py --checkpoint`` load it.
"""
import copy
import os.path as osp
from typing import Sequence

import torch

from ..benchmark.flops import inference_params
from ..deploy.model import (SegmentorWithResize, build_inference_model,
                            is_deploy_checkpoint, load_student_weights,
                            require_sctnet, save_deploy_checkpoint)
from ..io.checkpoint import read_checkpoint
from ..io.checksum import file_sha256
from ..io.config import load_config
from ..io.errors import CheckpointMismatchError, UserError
from ..io.files import check_input_file, check_output_file
from ..models.deploy_form import switch_to_deploy

__all__ = ['write_deploy_checkpoint', 'TOLERANCE']

#: largest accepted relative difference between deployed and eager outputs
TOLERANCE = 1e-4
MIN_SIDE = 32


def _check_shape(shape: Sequence[int]) -> tuple:
    shape = tuple(int(s) for s in shape)
    if len(shape) != 2 or min(shape) < MIN_SIDE:
        raise UserError(f'--check-shape {" ".join(map(str, shape))}: give '
                        f'H W, both >= {MIN_SIDE} (the backbone downsamples '
                        'by 32)')
    return shape


def write_deploy_checkpoint(in_ckpt: str,
                            out_ckpt: str,
                            config: str,
                            fold_prenorm: bool = True,
                            channels_last: bool = True,
                            check_shape: Sequence[int] = (256, 512)) -> float:
    """Fold the model of ``config`` with the weights of ``in_ckpt`` into
    its deploy form and write it to ``out_ckpt`` (a new file).

    Returns:
        float: the maximum relative error of the deployed model against
        the eager one at ``check_shape`` (nothing is written above
        :data:`TOLERANCE`).

    Raises:
        UserError: missing/damaged files, an ``out_ckpt`` that exists, is
            an input or cannot be written, a checkpoint that is already
            deployed or does not fit the config (checked before the model
            is built where the file alone tells).
    """
    cfg = load_config(config)
    check_input_file(in_ckpt, 'checkpoint')
    check_output_file(
        out_ckpt,
        inputs=[in_ckpt, config],
        exists_hint='choose another output path (existing files are never '
        'overwritten)')
    shape = _check_shape(check_shape)
    ckpt = read_checkpoint(in_ckpt)
    if is_deploy_checkpoint(ckpt):
        raise CheckpointMismatchError(
            f'{in_ckpt} is already a deploy checkpoint; load it with '
            'mmseg_sctnet.deploy.load_inference_model (nothing to fold).')
    try:
        eager = build_inference_model(cfg, init_weights=False)
    except (KeyError, TypeError, ValueError) as e:
        raise UserError(f'cannot build the model of {config}: '
                        f'{type(e).__name__}: {e}') from None
    require_sctnet(eager, config)
    try:
        load_student_weights(eager, ckpt, source=in_ckpt)
    except (KeyError, ValueError) as e:  # incl. CheckpointMismatchError
        msg = str(e.args[0] if e.args else e)
        if in_ckpt not in msg:
            msg = f'{in_ckpt}: {msg}'
        raise CheckpointMismatchError(msg) from None
    deployed = switch_to_deploy(
        copy.deepcopy(eager),
        fold_prenorm=fold_prenorm,
        channels_last=channels_last)
    x = torch.randn(1, 3, *shape, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        ref = SegmentorWithResize(eager)(x)
        out = SegmentorWithResize(deployed)(x)
    err = ((out - ref).abs().max() / ref.abs().max().clamp_min(1e-12)).item()
    print(f'deploy check at 1x3x{shape[0]}x{shape[1]}: max relative error '
          f'{err:.2e} (tolerance {TOLERANCE:g})')
    if not err < TOLERANCE:
        raise UserError(f'the deployed model does not match the eager model '
                        f'(max relative error {err:.2e} > {TOLERANCE:g}); '
                        f'nothing written to {out_ckpt}. Please report it '
                        'with the config.')
    meta = dict(
        config=osp.abspath(config),
        source_checkpoint=osp.abspath(in_ckpt),
        source_sha256=file_sha256(in_ckpt),
        check_max_rel_error=err)
    # OUT appears complete or not at all and never replaces a file
    save_deploy_checkpoint(deployed, out_ckpt, meta=meta,
                           inputs=[in_ckpt, config])
    bn = torch.nn.modules.batchnorm._BatchNorm
    n_bn = sum(isinstance(m, bn) for m in eager.modules())
    n_bn_left = sum(isinstance(m, bn) for m in deployed.modules())
    print(f'BatchNorm layers: {n_bn} -> {n_bn_left} (the rest are followed '
          'by a ReLU before their conv and stay)')
    print(f'parameters of the eager inference model: '
          f'{inference_params(eager):,}')
    print(f'wrote {out_ckpt}')
    return err
