"""What this machine's CPU is: the one place that reads ``/proc/cpuinfo``.

Benchmarks print it next to every figure (speed differs by CPU kind: int8
gains nothing without VNNI, bf16 without native BF16 runs emulated), and
the precision checks read its flags: bf16 inference
(:mod:`mmseg_sctnet.deploy.dtype`) and bf16 mixed-precision training
(``tools/train.py --amp`` on a CPU, :mod:`mmseg_sctnet.engine.amp`) both
ask :func:`cpu_bf16_feature`.

The flags can be set with the environment variable ``SCTNET_CPU_FLAGS``
(space- or comma-separated, e.g. ``avx2 fma``): what a CPU without native
bf16 gets, on any machine (the tests use it to check the refusals of the
command-line tools).
"""
import functools
import os
import platform
from typing import Dict, FrozenSet, Optional

import torch

__all__ = [
    'CPU_FLAGS_ENV', 'REPORTED_FLAGS', 'BF16_CPU_FLAGS', 'cpu_flags',
    'cpu_flags_source', 'cpu_bf16_feature', 'cpu_model', 'cpu_family_model',
    'cpu_description'
]

#: environment variable that replaces the detected CPU flags
CPU_FLAGS_ENV = 'SCTNET_CPU_FLAGS'
#: CPU flags worth stating next to CPU figures
REPORTED_FLAGS = ('avx2', 'fma', 'avx512f', 'avx512bw', 'avx512_vnni',
                  'avx_vnni', 'avx512_bf16', 'amx_tile', 'amx_bf16',
                  'amx_int8', 'avx512_fp16')
#: CPU flags (``/proc/cpuinfo``) that mean native bf16 arithmetic
BF16_CPU_FLAGS = ('amx_bf16', 'avx512_bf16')


@functools.lru_cache(maxsize=1)
def _cpuinfo() -> Dict[str, str]:
    """The fields of the first processor in ``/proc/cpuinfo`` (empty where
    there is none: macOS, Windows)."""
    fields = {}
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if not line.strip():
                    break
                k, _, v = line.partition(':')
                fields[k.strip()] = v.strip()
    except OSError:
        pass
    return fields


def cpu_flags() -> FrozenSet[str]:
    """The CPU's feature flags: ``$SCTNET_CPU_FLAGS`` when set, else
    ``/proc/cpuinfo`` (``flags``, or ``Features`` on ARM; empty where
    unknown)."""
    override = os.environ.get(CPU_FLAGS_ENV)
    if override is not None:
        return frozenset(override.replace(',', ' ').split())
    info = _cpuinfo()
    return frozenset((info.get('flags') or info.get('Features') or
                      '').split())


def cpu_flags_source() -> str:
    """Where :func:`cpu_flags` read the flags: ``$SCTNET_CPU_FLAGS`` or
    ``/proc/cpuinfo`` (for messages that name them)."""
    return f'${CPU_FLAGS_ENV}' if CPU_FLAGS_ENV in os.environ else \
        '/proc/cpuinfo'


def cpu_bf16_feature(flags: Optional[FrozenSet[str]] = None
                     ) -> Optional[str]:
    """The native bf16 feature of this CPU (``'amx_bf16'``,
    ``'avx512_bf16'``) or None. ``flags`` overrides the detected ones
    (:func:`cpu_flags`)."""
    detected = flags is None and CPU_FLAGS_ENV not in os.environ
    flags = cpu_flags() if flags is None else flags
    for f in BF16_CPU_FLAGS:
        if f in flags:
            return f
    # no /proc/cpuinfo (macOS, Windows): ask torch's own CPU probe
    if detected and not flags:
        probe = getattr(torch.cpu, '_is_avx512_bf16_supported', None)
        if probe is not None and probe():
            return 'avx512_bf16'
    return None


def cpu_model() -> str:
    """``model name`` from ``/proc/cpuinfo`` (the platform's name
    otherwise)."""
    return _cpuinfo().get('model name') or platform.processor() or \
        platform.machine()


def cpu_family_model() -> Optional[str]:
    """``family F model M`` from ``/proc/cpuinfo``: what tells the CPU
    generation apart where the model name is generic, e.g. "AMD EPYC" of
    a virtual machine (family 25 = Zen 3/4, 26 = Zen 5)."""
    info = _cpuinfo()
    if 'cpu family' not in info:
        return None
    return f'family {info["cpu family"]} model {info.get("model", "?")}'


def cpu_description() -> dict:
    """CPU model, the SIMD flags that matter here, torch's capability and
    thread count."""
    flags = cpu_flags()
    return dict(
        cpu=cpu_model(),
        cpu_family_model=cpu_family_model(),
        cpu_flags=[f for f in REPORTED_FLAGS if f in flags],
        torch_cpu_capability=torch.backends.cpu.get_cpu_capability(),
        threads=torch.get_num_threads())
