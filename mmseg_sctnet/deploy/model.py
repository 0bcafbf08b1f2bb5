"""Config + checkpoint -> inference model: the project's one path.

Every tool that runs a trained model (``tools/test.py`` through
MMEngine's ``load_from`` aside) builds it here: the inferencer of
``tools/inference.py``, ONNX export, deploy checkpoints, FLOPs and speed
benchmarks.

* :func:`build_inference_model`: the config's segmentor for inference
  (``train_cfg=None``: no teacher, no SIAM projections; no pretrained
  file; SyncBN -> BN), random weights;
* :func:`load_weights`: an eager checkpoint (training output, converted
  official file) or a deploy checkpoint (``tools/deploy.py``) into it;
* :func:`load_inference_model`: both, and the deploy form on request;
* :func:`save_deploy_checkpoint`: a deployed model's tensors with its
  deploy options, written atomically;
* :class:`SegmentorWithResize`: ``img -> full-size logits``, what the
  speed protocol times and ONNX export writes.
"""
import copy
import logging
from typing import Optional, Sequence, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.logging import MMLogger
from mmengine.registry import init_default_scope
from mmseg.registry import MODELS
from torch import Tensor

from ..io.checkpoint import read_checkpoint
from ..io.config import (explain_build_errors, load_config,
                         replace_sync_norm, strip_pretrained)
from ..io.errors import CheckpointMismatchError, UserError
from ..io.files import torch_bytes, write_file
from ..io.state_dict import extract_state_dict, load_checked_state_dict
from ..models import EncoderDecoderDistill
from ..models.backbones import SCTNet
from ..models.deploy_form import deploy_options, is_deployed, switch_to_deploy

__all__ = [
    'DEPLOY_META_KEY', 'build_inference_model', 'require_sctnet',
    'is_deploy_checkpoint', 'load_student_weights', 'load_weights',
    'load_inference_model', 'save_deploy_checkpoint',
    'compile_for_inference', 'SegmentorWithResize'
]

DEPLOY_META_KEY = 'sctnet_deploy'


def _quiet_init_weights(model: nn.Module) -> None:
    """``model.init_weights()`` without MMEngine's per-parameter log."""
    logger = MMLogger.get_current_instance()
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        model.init_weights()
    finally:
        logger.setLevel(level)


def build_inference_model(config, device: Union[str, torch.device] = 'cpu',
                          init_weights: bool = True,
                          source: Optional[str] = None) -> nn.Module:
    """The segmentor of ``config`` (path or ``Config``) for inference,
    random weights.

    ``init_weights``: run the model's own initialisation (Kaiming for
    SCTNet) instead of PyTorch's defaults; never loads pretrained files.
    ``train_cfg`` is set to None (no teacher, no SIAM projections: see
    :class:`~mmseg_sctnet.models.EncoderDecoderDistill`), pretrained inits
    are stripped, SyncBN becomes BN. Works for any MMSegmentation config
    (the peer models too). Eval mode, on ``device``. A config argument a
    component does not take is a :class:`~mmseg_sctnet.io.errors.
    ConfigError` naming it (``source`` names the config in it).
    """
    cfg = load_config(config)
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    model_cfg = copy.deepcopy(cfg.model)
    model_cfg['train_cfg'] = None
    strip_pretrained(model_cfg)
    replace_sync_norm(model_cfg)
    with explain_build_errors(cfg, source or cfg.filename or 'the config'):
        model = MODELS.build(model_cfg)
    if init_weights:
        _quiet_init_weights(model)
    model.cfg = cfg
    return model.to(device).eval()


def require_sctnet(model: nn.Module, config: str) -> None:
    """The deploy form exists for SCTNet backbones only."""
    backbone = getattr(model, 'backbone', None)
    if not isinstance(backbone, SCTNet):
        raise UserError(f'{config} builds a {type(backbone).__name__} '
                        'backbone, not SCTNet; the deploy form exists for '
                        'SCTNet models only.')


def is_deploy_checkpoint(ckpt: Union[str, dict]) -> bool:
    """True for files written by ``tools/deploy.py``."""
    if isinstance(ckpt, str):
        ckpt = read_checkpoint(ckpt)
    return isinstance(ckpt.get('meta'), dict) and DEPLOY_META_KEY in ckpt[
        'meta']


_OTHER_MODEL = ('Use the config the checkpoint was trained with (SCTNet-S '
                'vs SCTNet-B, number of classes); deploy checkpoints are '
                'loaded by load_inference_model.')


def load_student_weights(model: nn.Module, ckpt: Union[str, dict],
                         source: str = 'checkpoint') -> None:
    """Load an (eager) checkpoint into an inference segmentor, whatever
    its class: every backbone and decode-head tensor must be in the file
    with the model's shape; other tensors (teacher, SIAM, auxiliary head)
    are skipped. Otherwise ``CheckpointMismatchError`` (a ``ValueError``)
    explains the mismatch
    (:func:`mmseg_sctnet.io.state_dict.load_checked_state_dict`)."""
    if isinstance(ckpt, str):
        source, ckpt = ckpt, read_checkpoint(ckpt)
    load_checked_state_dict(
        model,
        extract_state_dict(ckpt),
        headline=f'{source} does not fit this config',
        required=('backbone.', 'decode_head.'),
        allow_unexpected=True,
        fix=_OTHER_MODEL,
        source=source)


def load_weights(model: nn.Module, ckpt: dict,
                 source: str = 'checkpoint') -> nn.Module:
    """Put a checkpoint into an inference model built by
    :func:`build_inference_model`; returns the model to use.

    * a deploy checkpoint (``tools/deploy.py``): the model is deployed with
      the options stored in the file, then its tensors are loaded strictly
      (the returned model is the deployed one);
    * an eager checkpoint into an :class:`EncoderDecoderDistill`: its load
      hook skips the training-only heads and refuses another class count or
      model size with the message ``init_model`` and ``tools/test.py``
      give; the file is named in front of it;
    * an eager checkpoint into another segmentor:
      :func:`load_student_weights`.
    """
    if is_deploy_checkpoint(ckpt):
        model = switch_to_deploy(model, **ckpt['meta'][DEPLOY_META_KEY])
        load_checked_state_dict(
            model,
            ckpt['state_dict'],
            headline=f'Deploy checkpoint {source} does not fit this config',
            fix=_OTHER_MODEL,
            source=source)
        return model
    if isinstance(model, EncoderDecoderDistill):
        try:
            model.load_state_dict(extract_state_dict(ckpt), strict=False)
        except CheckpointMismatchError as err:
            msg = str(err)
            raise CheckpointMismatchError(
                msg if source in msg else f'{source}: {msg}') from None
        return model
    load_student_weights(model, ckpt, source)
    return model


def load_inference_model(config,
                         checkpoint: Union[None, str, dict] = None,
                         device: Union[str, torch.device] = 'cpu',
                         deploy: bool = False,
                         fold_prenorm: bool = True,
                         channels_last: bool = True,
                         source: Optional[str] = None) -> nn.Module:
    """Inference segmentor from a config and an eager or deploy checkpoint.

    Not ``mmseg.apis.init_model`` (which builds the eager model and reads
    ``meta`` for the dataset): this one also builds the folded deploy graph.

    * no checkpoint: random weights (benchmarks, FLOPs);
    * an eager checkpoint (training output, converted official file; a
      path or the dict read already, then ``source`` names it): loaded
      (:func:`load_weights`), then deployed when ``deploy``;
    * a deploy checkpoint: the model is deployed with the options stored in
      the file (``deploy`` and the option arguments are ignored).
    """
    model = build_inference_model(config, device='cpu')
    if checkpoint is not None:
        if isinstance(checkpoint, dict):
            ckpt = checkpoint
        else:
            ckpt, source = read_checkpoint(checkpoint), str(checkpoint)
        model = load_weights(model, ckpt, source or 'checkpoint')
    if deploy and not is_deployed(model):
        switch_to_deploy(model, fold_prenorm=fold_prenorm,
                         channels_last=channels_last)
    return model.to(device).eval()


def save_deploy_checkpoint(model: nn.Module, path: str,
                           meta: Optional[dict] = None,
                           inputs: Sequence[str] = ()) -> None:
    """Write a deployed model's tensors with the deploy options in ``meta``
    (atomically; an existing file, or one of ``inputs``, is never
    replaced: :class:`~mmseg_sctnet.io.errors.PathError`)."""
    if not is_deployed(model):
        raise ValueError('save_deploy_checkpoint needs a deployed model '
                         '(call switch_to_deploy first)')
    meta = dict(meta or {})
    meta[DEPLOY_META_KEY] = deploy_options(model)
    state = {
        k: v.detach().cpu().contiguous()
        for k, v in model.state_dict().items()
    }
    write_file(path, torch_bytes(dict(meta=meta, state_dict=state)),
               inputs=inputs)


def compile_for_inference(module: nn.Module) -> nn.Module:
    """``torch.compile`` for inference: Inductor with ``freezing`` (weights
    become constants: convolution weights are pre-packed for oneDNN on CPU
    and BatchNorms/casts folded), the setting PyTorch recommends for CPU
    inference. Compilation happens on the first call (tens of seconds on a
    2-core CPU); the module must stay in eval mode and be called without
    gradients (``torch.inference_mode``/``no_grad``)."""
    return torch.compile(module, options={'freezing': True})


class SegmentorWithResize(nn.Module):
    """``img -> logits at the input size``: what the speed protocol times.

    Runs ``segmentor._forward`` (backbone + decode head, MMSegmentation's
    tensor mode) and upsamples bilinearly to the input size, with the head's
    ``align_corners`` (``resize=False``: the head's own stride).
    Shapes: ``[N, 3, H, W] -> [N, num_classes, H, W]``.
    """

    def __init__(self, segmentor: nn.Module, resize: bool = True):
        super().__init__()
        self.segmentor = segmentor
        self.resize = resize
        self.align_corners = bool(
            getattr(segmentor.decode_head, 'align_corners', False))

    def forward(self, img: Tensor) -> Tensor:
        out = self.segmentor._forward(img)
        if isinstance(out, (list, tuple)):
            out = out[0]
        if self.resize:
            out = F.interpolate(
                out,
                size=img.shape[2:],
                mode='bilinear',
                align_corners=self.align_corners)
        return out
