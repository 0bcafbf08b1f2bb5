"""MMEngine pieces: hooks, the optimizer constructor, the Runner, and the
training and evaluation runs the tools make from a config.

Registered in MMSegmentation's registries on import (the configs name
them): :class:`AtomicCheckpointHook`, :class:`DatasetCheckHook`,
:class:`NonFiniteLossHook`, :class:`ExactResumeHook`,
:class:`PreemptionHook`, :class:`SameStartHook`,
:class:`SCTNetOptimWrapperConstructor`,
:class:`CPUBF16OptimWrapper` (``--amp`` on a CPU with native bf16,
:mod:`.amp`).
The runs (:mod:`.training_run`, :mod:`.evaluation_run`, :mod:`.runner`,
:mod:`.distributed`) are imported where used.
"""
from .amp import CPUBF16OptimWrapper
from .checkpoint_hook import AtomicCheckpointHook
from .hooks import DatasetCheckHook, ExactResumeHook, NonFiniteLossHook
from .optimizer_constructor import SCTNetOptimWrapperConstructor
from .preemption import PreemptionHook
from .resume import find_resume_checkpoint, resolve_auto_resume
from .same_start_hook import SameStartHook

__all__ = [
    'AtomicCheckpointHook', 'CPUBF16OptimWrapper', 'DatasetCheckHook',
    'ExactResumeHook', 'NonFiniteLossHook', 'PreemptionHook',
    'SCTNetOptimWrapperConstructor', 'SameStartHook',
    'find_resume_checkpoint', 'resolve_auto_resume'
]
