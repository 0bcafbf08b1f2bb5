"""``switch_to_deploy``: turn a trained SCTNet into its inference graph."""
from typing import Optional

import torch
import torch.nn as nn
from mmengine.logging import print_log

from ..models.backbones import SCTNet
from ..models.decode_heads import SCTHead
from .fuse import fuse_conv_bn
from .modules import DeploySCTNet

DEPLOY_ATTR = '_sctnet_deploy'


def is_deployed(model: nn.Module) -> bool:
    """True when :func:`switch_to_deploy` was applied to ``model``."""
    return getattr(model, DEPLOY_ATTR, None) is not None or isinstance(
        model, DeploySCTNet) or isinstance(
            getattr(model, 'backbone', None), DeploySCTNet)


def deploy_options(model: nn.Module) -> Optional[dict]:
    """The options ``switch_to_deploy`` was called with (None if eager)."""
    opts = getattr(model, DEPLOY_ATTR, None)
    return dict(opts) if opts is not None else None


def _deploy_head(head: SCTHead) -> None:
    """Fold ``bn2`` into ``conv1`` of an SCTHead (in place).

    ``bn1`` stays: a ReLU separates it from ``conv1``. The head's
    ``forward`` is unchanged and computes ``cls(relu(conv1'(relu(bn1(x)))))``.
    """
    head.conv1 = fuse_conv_bn(head.conv1, head.bn2)
    head.bn2 = nn.Identity()
    head.relu = nn.ReLU(inplace=True)  # both uses see fresh tensors
    if head.dropout is not None and not head.dropout.p:
        head.dropout = None


def _contiguous_logits(module, args, output):
    """Forward hook: return the logits in the default (NCHW) layout.

    The backbone runs channels-last; the bilinear upsampling of the logits
    that follows (speed protocol, ``predict``) is faster on NCHW tensors
    (about 10 ms per 512x1024 SCTNet-B image on a 2-core CPU), and callers
    get the layout they expect. Values are unchanged.
    """
    return output.contiguous()


@torch.no_grad()
def switch_to_deploy(model: nn.Module,
                     fold_prenorm: bool = True,
                     channels_last: bool = True) -> nn.Module:
    """Convert a trained SCTNet segmentor (or backbone) for inference.

    * training-only heads (``auxiliary_head``: AU_SCTHead and the SIAM
      guidance head with the teacher) are removed;
    * every BatchNorm that follows a convolution is folded into it (stem,
      BasicBlocks and their shortcuts, the stage-4 down-sampling, the decode
      head's ``bn2``);
    * the pre-norms of the conv attention and of the CFBlock MLP are folded
      exactly, border corrections included (``fold_prenorm``);
    * DropPath/Dropout are dropped, ReLUs and residual sums run in place,
      the attention uses pre-transposed kernels and a channels-last dual
      normalisation;
    * with ``channels_last`` the weights are stored channels-last and the
      input is converted on entry (faster convolutions on CPU and on
      tensor-core GPUs).

    BatchNorms that stay (DAPPM, the decode head's ``bn1``) are each
    followed by a ReLU before their convolution and cannot be folded.

    The model is put in eval mode; the running statistics at call time are
    folded, so load the trained weights first. The result is
    inference-only (no gradients; ``loss`` is not supported).

    Args:
        model: an ``EncoderDecoder``/``EncoderDecoderDistill`` with an
            :class:`SCTNet` backbone (converted in place and returned), or an
            :class:`SCTNet` backbone (a new :class:`DeploySCTNet` is
            returned).
        fold_prenorm (bool): fold the CFBlocks' pre-norms. Default True.
        channels_last (bool): channels-last memory format. Default True.

    Returns:
        The deployed model.

    Raises:
        TypeError: ``model`` contains no SCTNet backbone.
    """
    opts = dict(fold_prenorm=bool(fold_prenorm),
                channels_last=bool(channels_last))
    if isinstance(model, SCTNet):
        model.eval()
        out = DeploySCTNet(model, fold_prenorm, channels_last).eval()
        if channels_last:
            out.to(memory_format=torch.channels_last)
        setattr(out, DEPLOY_ATTR, opts)
        return out
    if is_deployed(model):
        old = deploy_options(model)
        if old is not None and old != opts:
            raise ValueError(f'model already deployed with {old}; build it '
                             f'again to deploy with {opts}')
        return model
    backbone = getattr(model, 'backbone', None)
    if not isinstance(backbone, SCTNet):
        raise TypeError(
            'switch_to_deploy expects an SCTNet segmentor or backbone, got '
            f'{type(model).__name__} with backbone '
            f'{type(backbone).__name__}')
    model.eval()
    model.backbone = DeploySCTNet(backbone, fold_prenorm, channels_last)
    if getattr(model, 'auxiliary_head', None) is not None:
        model.auxiliary_head = None
    if isinstance(model.decode_head, SCTHead):
        _deploy_head(model.decode_head)
    else:
        print_log(
            f'switch_to_deploy: decode head {type(model.decode_head).__name__}'
            ' is not an SCTHead and is kept as it is', logger='current')
    if channels_last:
        model.to(memory_format=torch.channels_last)
        model.decode_head.register_forward_hook(_contiguous_logits)
    for p in model.parameters():
        p.requires_grad_(False)
    model.eval()
    setattr(model, DEPLOY_ATTR, opts)
    return model
