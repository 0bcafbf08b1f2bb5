"""Reduced-precision inference: which precisions a device runs natively,
and the module that runs a segmentor in one of them.

* ``fp32``: everywhere.
* ``bf16``: on a CUDA device that reports bf16 support, or on a CPU with
  native bf16 instructions (AVX512-BF16 or AMX-BF16, read from the CPU
  flags; oneDNN then uses ``vdpbf16ps`` / AMX tiles). A CPU without them
  would run bf16 through slow emulation: refused, no silent fallback.
* ``fp16``: CUDA only (CPU half-precision convolutions are emulated).

The CPU flags and the bf16 probe (:func:`cpu_bf16_feature`, shared with
bf16 mixed-precision training) come from :mod:`mmseg_sctnet.io.cpu`
(``SCTNET_CPU_FLAGS`` replaces them: what a CPU without native bf16 gets,
on any machine).

Two ways to run in bf16/fp16 (``mode``): ``'autocast'`` (weights stay
fp32, ``torch.autocast`` casts per operation: convolutions and matrix
products run in the low precision, normalisations and softmax in fp32) and
``'weights'`` (weights and activations converted once; nothing is
re-cast per call, every operation runs in the low precision). Which is
faster and how much accuracy each keeps is measured in docs/deploy.md.
"""
from typing import Callable, Optional

import torch
import torch.nn as nn

from ..io.cpu import (BF16_CPU_FLAGS, CPU_FLAGS_ENV, cpu_bf16_feature,
                      cpu_flags, cpu_flags_source, cpu_model)
from ..io.errors import UnsupportedDtypeError

DTYPES = {'fp32': torch.float32, 'bf16': torch.bfloat16,
          'fp16': torch.float16}
MODES = ('autocast', 'weights')

__all__ = [
    'DTYPES', 'MODES', 'check_dtype', 'LowPrecision', 'with_dtype',
    # the CPU facts, from mmseg_sctnet.io.cpu
    'BF16_CPU_FLAGS', 'CPU_FLAGS_ENV', 'cpu_bf16_feature', 'cpu_flags'
]


def check_dtype(dtype: str,
                device,
                bf16_feature: Optional[Callable[[], Optional[str]]] = None
                ) -> None:
    """Refuse a precision the device has no native support for.

    Args:
        dtype: ``'fp32'``, ``'bf16'`` or ``'fp16'``.
        device: ``torch.device`` or its name.
        bf16_feature: the CPU probe (default :func:`cpu_bf16_feature`;
            injectable for tests).

    Raises:
        UnsupportedDtypeError: naming the device and what to use instead.
    """
    if dtype not in DTYPES:
        raise UnsupportedDtypeError(
            f'unknown dtype {dtype!r}; choose one of {", ".join(DTYPES)}')
    dev = torch.device(device)
    if dtype == 'fp32':
        return
    if dev.type == 'cuda':
        if dtype == 'bf16' and not torch.cuda.is_bf16_supported():
            raise UnsupportedDtypeError(
                f'--dtype bf16: {torch.cuda.get_device_name(dev)} has no '
                'native bf16 support; use --dtype fp16 or fp32')
        return
    if dtype == 'fp16':
        raise UnsupportedDtypeError(
            '--dtype fp16 needs a CUDA device (half-precision convolutions '
            'on CPU are emulated and slow); on CPU use --dtype bf16 (where '
            'supported) or fp32, or the int8 ONNX model')
    if (bf16_feature or cpu_bf16_feature)() is None:
        where = cpu_flags_source()
        raise UnsupportedDtypeError(
            f'--dtype bf16: this CPU ({cpu_model()}) has neither AVX512-BF16 '
            f'nor AMX-BF16 (flags avx512_bf16 / amx_bf16 in {where}), '
            'so bf16 would run emulated and slower than fp32; use --dtype '
            'fp32 or the int8 ONNX model (tools/export_onnx.py --int8)')


class LowPrecision(nn.Module):
    """Run ``module`` (``img -> logits``) in bf16/fp16; fp32 in and out.

    Args:
        module: the fp32 module (converted in place for ``'weights'``).
        dtype: ``'bf16'`` or ``'fp16'``.
        mode: ``'autocast'`` or ``'weights'`` (see the module docstring).
        device_type: ``'cpu'`` or ``'cuda'`` (autocast needs it).
    """

    def __init__(self, module: nn.Module, dtype: str, mode: str = 'autocast',
                 device_type: str = 'cpu'):
        super().__init__()
        if dtype not in ('bf16', 'fp16'):
            raise ValueError(f'LowPrecision needs bf16 or fp16, not {dtype}')
        if mode not in MODES:
            raise ValueError(f'mode {mode!r}: one of {MODES}')
        self.dtype = DTYPES[dtype]
        self.mode = mode
        self.device_type = device_type
        self.module = module.to(self.dtype) if mode == 'weights' else module

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        if self.mode == 'weights':
            return self.module(img.to(self.dtype)).float()
        with torch.autocast(self.device_type, dtype=self.dtype):
            out = self.module(img)
        return out.float()


def with_dtype(module: nn.Module, dtype: str, device,
               mode: str = 'autocast') -> nn.Module:
    """``module`` itself for fp32, else a checked :class:`LowPrecision`."""
    check_dtype(dtype, device)
    if dtype == 'fp32':
        return module
    return LowPrecision(module, dtype, mode, torch.device(device).type)
