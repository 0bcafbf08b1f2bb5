"""Training-engine pieces registered in MMSegmentation's registries."""
from .checkpoint_hook import AtomicCheckpointHook
from .hooks import DatasetCheckHook, ExactResumeHook, NonFiniteLossHook
from .optimizer_constructor import SCTNetOptimWrapperConstructor
from .resume import find_resume_checkpoint, resolve_auto_resume

__all__ = [
    'SCTNetOptimWrapperConstructor', 'DatasetCheckHook', 'NonFiniteLossHook',
    'ExactResumeHook', 'AtomicCheckpointHook', 'find_resume_checkpoint',
    'resolve_auto_resume'
]
