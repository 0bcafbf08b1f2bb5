"""Weight initialisation used by the SCTNet student."""
import torch.nn as nn
from torch.nn.modules.batchnorm import _BatchNorm


def init_sctnet_weights(module: nn.Module) -> None:
    """Initialise ``module`` and its children in place.

    What the official release's ``_init_weights_kaiming`` asks for: Kaiming
    normal (fan_out, ReLU) for convolutions, zero biases, BatchNorm weight 1
    and bias 0, truncated normal (std 0.02) for linear layers. The learnable
    kernels of :class:`ConvolutionalAttention` are (re)drawn by their own
    ``init_weights`` (truncated normal, std 0.001).

    Note: the official code passes *tensors* to mmcv's module-level init
    helpers (``kaiming_init(m.weight)``), which silently do nothing, so the
    official weights effectively started from PyTorch's defaults (and zero
    attention kernels) before ImageNet pre-training was loaded. We implement
    the stated intent; with ``init_cfg=Pretrained`` both are overwritten.
    """
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode='fan_out',
                                    nonlinearity='relu')
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, _BatchNorm):
            if m.weight is not None:
                nn.init.ones_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.trunc_normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    for m in module.modules():
        if hasattr(m, 'reset_attention_kernels'):
            m.reset_attention_kernels()
