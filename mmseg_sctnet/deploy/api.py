"""Build inference models from configs, load eager or deploy checkpoints."""
import os.path as osp
from typing import Optional, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from .convert import deploy_options, is_deployed, switch_to_deploy

DEPLOY_META_KEY = 'sctnet_deploy'


def _strip_pretrained(cfg) -> None:
    """Remove every ``Pretrained`` init and ``pretrained=`` path (in place):
    inference/benchmark models never download or read ImageNet weights."""
    if isinstance(cfg, dict):
        if 'pretrained' in cfg and isinstance(cfg['pretrained'], str):
            cfg['pretrained'] = None
        init = cfg.get('init_cfg')
        if isinstance(init, dict) and init.get('type') == 'Pretrained':
            cfg['init_cfg'] = None
        elif isinstance(init, (list, tuple)):
            cfg['init_cfg'] = [
                c for c in init
                if not (isinstance(c, dict) and c.get('type') == 'Pretrained')
            ] or None
        for v in cfg.values():
            _strip_pretrained(v)
    elif isinstance(cfg, (list, tuple)):
        for v in cfg:
            _strip_pretrained(v)


def _sync_bn_to_bn(cfg) -> None:
    if isinstance(cfg, dict):
        if cfg.get('type') in ('SyncBN', 'MMSyncBN'):
            cfg['type'] = 'BN'
        for v in cfg.values():
            _sync_bn_to_bn(v)
    elif isinstance(cfg, (list, tuple)):
        for v in cfg:
            _sync_bn_to_bn(v)


def _quiet_init_weights(model: nn.Module) -> None:
    """``model.init_weights()`` without MMEngine's per-parameter log."""
    import logging

    from mmengine.logging import MMLogger
    logger = MMLogger.get_current_instance()
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        model.init_weights()
    finally:
        logger.setLevel(level)


def load_config(config):
    """``Config`` from a path (clear error when missing) or a Config."""
    from mmengine.config import Config
    if isinstance(config, Config):
        return config
    if not osp.isfile(config):
        raise FileNotFoundError(
            f'config file not found: {config!r} (resolved to '
            f'{osp.abspath(config)!r}); pass one of the files under configs/')
    return Config.fromfile(config)


def build_inference_model(config, device: Union[str, torch.device] = 'cpu',
                          init_weights: bool = True) -> nn.Module:
    """The segmentor of ``config`` for inference, random weights.

    ``init_weights``: run the model's own initialisation (Kaiming for
    SCTNet) instead of PyTorch's defaults; never loads pretrained files.

    ``train_cfg`` is set to None (no teacher, no SIAM projections: see
    :class:`~mmseg_sctnet.models.EncoderDecoderDistill`), pretrained inits
    are stripped, SyncBN becomes BN. Works for any MMSegmentation config
    (used for the peer models as well). Eval mode, on ``device``.
    """
    import mmseg_sctnet  # noqa: F401  (registers the modules)
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS
    cfg = load_config(config)
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    model_cfg = cfg.model.copy()
    model_cfg['train_cfg'] = None
    _strip_pretrained(model_cfg)
    _sync_bn_to_bn(model_cfg)
    model = MODELS.build(model_cfg)
    if init_weights:
        _quiet_init_weights(model)
    model.cfg = cfg
    return model.to(device).eval()


def read_checkpoint(path: str) -> dict:
    """Read a checkpoint (path or URL) safely on the CPU:
    :func:`mmseg_sctnet.compat.read_checkpoint`, the project's one reader
    (missing, incomplete, non-checkpoint and unsafe files each get their
    own error and fix)."""
    from mmseg_sctnet.compat import read_checkpoint as _read
    return _read(path)


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
    """Load an (eager) checkpoint into an inference segmentor.

    Every backbone and decode-head tensor must be in the file with the
    model's shape; teacher/SIAM/auxiliary tensors are skipped by the
    segmentor's load hook. Otherwise ``CheckpointMismatchError`` (a
    ``ValueError``) explains the mismatch
    (:func:`mmseg_sctnet.models.utils.load_checked_state_dict`).
    """
    from mmseg_sctnet.models.utils import (extract_state_dict,
                                           load_checked_state_dict)
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


def load_inference_model(config,
                         checkpoint: Optional[str] = None,
                         device: Union[str, torch.device] = 'cpu',
                         deploy: bool = False,
                         fold_prenorm: bool = True,
                         channels_last: bool = True) -> nn.Module:
    """Inference segmentor from a config and an eager or deploy checkpoint.

    Not ``mmseg.apis.init_model`` (which builds the eager model and reads
    ``meta`` for the dataset): this one also builds the folded deploy graph.

    * no checkpoint: random weights (benchmarks, FLOPs);
    * an eager checkpoint (training output, converted official file):
      loaded, then deployed when ``deploy``;
    * a deploy checkpoint (``tools/deploy.py``): the model is deployed with
      the options stored in the file (``deploy`` and the option arguments
      are ignored) and its tensors loaded strictly.
    """
    from mmseg_sctnet.models.utils import load_checked_state_dict
    model = build_inference_model(config, device='cpu')
    if checkpoint is not None:
        ckpt = read_checkpoint(checkpoint)
        if is_deploy_checkpoint(ckpt):
            opts = ckpt['meta'][DEPLOY_META_KEY]
            switch_to_deploy(model, **opts)
            load_checked_state_dict(
                model,
                ckpt['state_dict'],
                headline=f'Deploy checkpoint {checkpoint} does not fit '
                'this config',
                fix=_OTHER_MODEL,
                source=checkpoint)
            return model.to(device).eval()
        load_student_weights(model, ckpt, source=checkpoint)
    if deploy:
        switch_to_deploy(model, fold_prenorm=fold_prenorm,
                         channels_last=channels_last)
    return model.to(device).eval()


def save_deploy_checkpoint(model: nn.Module, path: str,
                           meta: Optional[dict] = None) -> None:
    """Write a deployed model's tensors with the deploy options in ``meta``.

    Refuses to overwrite an existing file.
    """
    if not is_deployed(model):
        raise ValueError('save_deploy_checkpoint needs a deployed model '
                         '(call switch_to_deploy first)')
    if osp.exists(path):
        raise FileExistsError(f'{path} exists; choose another output path '
                              '(existing files are never overwritten)')
    meta = dict(meta or {})
    meta[DEPLOY_META_KEY] = deploy_options(model)
    state = {
        k: v.detach().cpu().contiguous()
        for k, v in model.state_dict().items()
    }
    d = osp.dirname(osp.abspath(path))
    if not osp.isdir(d):
        raise FileNotFoundError(f'output folder {d} does not exist')
    torch.save(dict(meta=meta, state_dict=state), path)


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
