"""What this machine's CPU is: the one place that reads ``/proc/cpuinfo``.

Benchmarks print it next to every figure (speed differs by CPU kind: int8
gains nothing without VNNI, bf16 without native BF16 runs emulated), and
the precision checks of :mod:`mmseg_sctnet.deploy.dtype` read its flags.

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
    'CPU_FLAGS_ENV', 'REPORTED_FLAGS', 'cpu_flags', 'cpu_model',
    'cpu_family_model', 'cpu_description'
]

#: environment variable that replaces the detected CPU flags
CPU_FLAGS_ENV = 'SCTNET_CPU_FLAGS'
#: CPU flags worth stating next to CPU figures
REPORTED_FLAGS = ('avx2', 'fma', 'avx512f', 'avx512bw', 'avx512_vnni',
                  'avx_vnni', 'avx512_bf16', 'amx_tile', 'amx_bf16',
                  'amx_int8', 'avx512_fp16')


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
