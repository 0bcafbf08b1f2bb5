"""The deploy form of a trained SCTNet: ``switch_to_deploy`` walks the model.

Each block keeps its own inference form next to it (timm's
``reparameterize()`` pattern): a module that computes differently at
inference defines ``switch_to_deploy(fold_prenorm=True)`` and returns the
module to use (itself, folded in place, or a new module such as
:class:`~mmseg_sctnet.models.layers.DeployConvAttention`). This file only
walks the model, removes the training-only heads and sets the memory
format. A new block needs its own ``switch_to_deploy``, nothing here.
"""
from typing import Optional

import torch
import torch.nn as nn
from mmengine.logging import print_log

from .backbones import SCTNet

DEPLOY_ATTR = '_sctnet_deploy'


def is_deployed(model: nn.Module) -> bool:
    """True when :func:`switch_to_deploy` was applied to ``model``."""
    return (getattr(model, DEPLOY_ATTR, None) is not None or getattr(
        getattr(model, 'backbone', None), DEPLOY_ATTR, None) is not None)


def deploy_options(model: nn.Module) -> Optional[dict]:
    """The options ``switch_to_deploy`` was called with (None if eager)."""
    opts = getattr(model, DEPLOY_ATTR, None)
    return dict(opts) if opts is not None else None


def deploy_modules(module: nn.Module, fold_prenorm: bool = True) -> nn.Module:
    """Replace every module under ``module`` that defines
    ``switch_to_deploy`` by what it returns, children before parents;
    returns ``module``'s own replacement (``module`` itself when it has no
    such method)."""
    for name, child in list(module.named_children()):
        new = deploy_modules(child, fold_prenorm)
        if new is not child:
            setattr(module, name, new)
    method = getattr(module, 'switch_to_deploy', None)
    return method(fold_prenorm=fold_prenorm) if callable(method) else module


def _channels_last_input(module, args):
    """Forward pre-hook: the input in channels-last memory format."""
    return (args[0].contiguous(memory_format=torch.channels_last), ) + tuple(
        args[1:])


def _contiguous_logits(module, args, output):
    """Forward hook: return the logits in the default (NCHW) layout.

    The backbone runs channels-last; the bilinear upsampling of the logits
    that follows (speed protocol, ``predict``) is faster on NCHW tensors
    (about 10 ms per 512x1024 SCTNet-B image on a 2-core CPU), and callers
    get the layout they expect. Values are unchanged.
    """
    return output.contiguous()


def _finish(model: nn.Module, backbone: nn.Module, opts: dict) -> None:
    if opts['channels_last']:
        model.to(memory_format=torch.channels_last)
        backbone.register_forward_pre_hook(_channels_last_input)
    for p in model.parameters():
        p.requires_grad_(False)
    model.eval()
    setattr(model, DEPLOY_ATTR, opts)
    setattr(backbone, DEPLOY_ATTR, opts)


@torch.no_grad()
def switch_to_deploy(model: nn.Module,
                     fold_prenorm: bool = True,
                     channels_last: bool = True) -> nn.Module:
    """Convert a trained SCTNet segmentor (or backbone) for inference.

    * training-only heads (``auxiliary_head``: AU_SCTHead and the SIAM
      guidance head with the teacher) are removed;
    * every module with a ``switch_to_deploy`` method is replaced by its
      inference form: every BatchNorm that follows a convolution folded
      into it (stem, BasicBlocks and their shortcuts, the stage-4
      down-sampling, the decode head's ``bn2``); the pre-norms of the conv
      attention and of the CFBlock MLP folded exactly, border corrections
      included (``fold_prenorm``); DropPath/Dropout dropped, ReLUs in
      place; the attention with pre-transposed kernels and a channels-last
      dual normalisation;
    * with ``channels_last`` the weights are stored channels-last and the
      input is converted on entry to the backbone (faster convolutions on
      CPU and on tensor-core GPUs).

    BatchNorms that stay (DAPPM, the decode head's ``bn1``) are each
    followed by a ReLU before their convolution and cannot be folded.

    The model is put in eval mode; the running statistics at call time are
    folded, so load the trained weights first. The result is
    inference-only (no gradients; ``loss`` is not supported).

    Args:
        model: an ``EncoderDecoder``/``EncoderDecoderDistill`` or an
            :class:`SCTNet` backbone, converted in place and returned.
        fold_prenorm (bool): fold the CFBlocks' pre-norms. Default True.
        channels_last (bool): channels-last memory format. Default True.

    Returns:
        The deployed model.

    Raises:
        TypeError: ``model`` contains no SCTNet backbone.
        ValueError: ``model`` was deployed with other options.
    """
    opts = dict(fold_prenorm=bool(fold_prenorm),
                channels_last=bool(channels_last))
    if is_deployed(model):
        old = deploy_options(model)
        if old is not None and old != opts:
            raise ValueError(f'model already deployed with {old}; build it '
                             f'again to deploy with {opts}')
        return model
    if isinstance(model, SCTNet):
        model.eval()
        deploy_modules(model, fold_prenorm)
        _finish(model, model, opts)
        return model
    backbone = getattr(model, 'backbone', None)
    if not isinstance(backbone, SCTNet):
        raise TypeError(
            'switch_to_deploy expects an SCTNet segmentor or backbone, got '
            f'{type(model).__name__} with backbone '
            f'{type(backbone).__name__}')
    model.eval()
    if getattr(model, 'auxiliary_head', None) is not None:
        model.auxiliary_head = None
    # the segmentor's own switch_to_deploy calls this function: walk its
    # children only
    for name, child in list(model.named_children()):
        setattr(model, name, deploy_modules(child, fold_prenorm))
    if not callable(getattr(model.decode_head, 'switch_to_deploy', None)):
        print_log(
            f'switch_to_deploy: decode head {type(model.decode_head).__name__}'
            ' has no switch_to_deploy and is kept as it is', logger='current')
    _finish(model, model.backbone, opts)
    if opts['channels_last']:
        model.decode_head.register_forward_hook(_contiguous_logits)
    return model
