"""Mixed-precision training: what ``tools/train.py --amp`` turns on.

* On a CUDA GPU: MMEngine's ``AmpOptimWrapper``, fp16 autocast with dynamic
  loss scaling (the scaler skips a step whose gradients overflowed and
  lowers its scale).
* Without CUDA, on a CPU with native bf16 (AVX512-BF16 or AMX-BF16; the
  flags are read by :func:`mmseg_sctnet.io.cpu.cpu_bf16_feature`, which
  ``$SCTNET_CPU_FLAGS`` overrides): :class:`CPUBF16OptimWrapper`, bf16
  autocast on the CPU. No loss scaling: bf16 has fp32's exponent range, so
  gradients do not underflow or overflow where fp32 ones would not.
* Elsewhere ``--amp`` is refused with one line (bf16 would run emulated,
  slower than fp32); nothing falls back silently.

Under either wrapper the forward pass (data preprocessor, student, the
frozen teacher under ``no_grad``) runs inside the wrapper's
``optim_context``: autocast runs convolutions and matrix products in the
low precision. The losses are computed in fp32 all the same:
:class:`~mmseg_sctnet.models.decode_heads.SCTHead` (and ``AuxSCTHead``)
compute the resize of the logits to the label size, the pixel sampler
(OHEM), the cross-entropy and the accuracy from float32 logits with
autocast off, and :class:`~mmseg_sctnet.models.losses.AlignmentLoss` (the
SIAM terms: softmax over H x W at temperature 4, which the official code
kept in fp32) does the same. Weights, gradients and optimizer state stay
fp32.
"""
from contextlib import contextmanager

import torch
import torch.nn as nn
from mmengine.optim import OptimWrapper
from mmseg.registry import OPTIM_WRAPPERS

from ..io.cpu import cpu_bf16_feature, cpu_flags_source, cpu_model
from ..io.errors import ConfigError, UnsupportedDtypeError

__all__ = [
    'AMP_WRAPPERS', 'CPUBF16OptimWrapper', 'check_cpu_bf16',
    'amp_optim_wrapper'
]

#: optim wrapper types that already train in mixed precision
AMP_WRAPPERS = ('AmpOptimWrapper', 'CPUBF16OptimWrapper')


def check_cpu_bf16(what: str = '--amp',
                   fix: str = 'train without --amp') -> str:
    """The CPU's native bf16 feature (``'amx_bf16'`` / ``'avx512_bf16'``);
    refuses with one line naming the flags and where they were read.

    Raises:
        UnsupportedDtypeError: on a CPU without AVX512-BF16 and AMX-BF16.
    """
    feature = cpu_bf16_feature()
    if feature is None:
        raise UnsupportedDtypeError(
            f'{what} needs a CUDA GPU (fp16 with loss scaling) or a CPU with '
            f'native bf16: this machine has no CUDA GPU and its CPU '
            f'({cpu_model()}) has neither AVX512-BF16 nor AMX-BF16 (flags '
            f'avx512_bf16 / amx_bf16 are not in {cpu_flags_source()}), so '
            f'bf16 training would run emulated, slower than fp32; {fix}.')
    return feature


@OPTIM_WRAPPERS.register_module()
class CPUBF16OptimWrapper(OptimWrapper):
    """``OptimWrapper`` that runs the forward pass and the losses under
    ``torch.autocast('cpu', dtype=torch.bfloat16)``.

    What ``tools/train.py --amp`` uses without a CUDA GPU, on a CPU with
    native bf16 (refused on another CPU, and for a model that is not on
    the CPU). Backward, gradient clipping and the optimizer step are
    :class:`OptimWrapper`'s: no loss scaling, which bf16 does not need.

    Args:
        **kwargs: :class:`OptimWrapper` arguments (``optimizer``,
            ``clip_grad``, ``accumulative_counts``).
    """

    def __init__(self, **kwargs):
        check_cpu_bf16(
            "optim_wrapper.type='CPUBF16OptimWrapper'",
            "use optim_wrapper.type='OptimWrapper'")
        super().__init__(**kwargs)
        devices = {
            p.device.type
            for g in self.optimizer.param_groups for p in g['params']
        }
        if devices - {'cpu'}:
            raise ConfigError(
                "optim_wrapper.type='CPUBF16OptimWrapper' trains on the CPU "
                f'but the model is on {sorted(devices - {"cpu"})[0]}; use '
                "optim_wrapper.type='AmpOptimWrapper' there (tools/train.py "
                '--amp picks it on a CUDA GPU).')
        self.cast_dtype = torch.bfloat16

    @contextmanager
    def optim_context(self, model: nn.Module):
        """:class:`OptimWrapper`'s context (gradient accumulation without
        synchronisation) inside bf16 autocast on the CPU."""
        with super().optim_context(model), torch.autocast(
                'cpu', dtype=torch.bfloat16):
            yield


def amp_optim_wrapper(cuda: bool) -> dict:
    """The ``optim_wrapper`` keys ``--amp`` sets: fp16 with dynamic loss
    scaling on a CUDA GPU, bf16 on a CPU with native bf16 (else refused,
    :func:`check_cpu_bf16`)."""
    if cuda:
        return dict(
            type='AmpOptimWrapper', loss_scale='dynamic', dtype='float16')
    check_cpu_bf16()
    return dict(type='CPUBF16OptimWrapper')
