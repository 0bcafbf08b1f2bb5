"""Training-engine pieces registered in MMSegmentation's registries."""
from .hooks import DatasetCheckHook, ExactResumeHook, NonFiniteLossHook
from .optimizer_constructor import SCTNetOptimWrapperConstructor

__all__ = [
    'SCTNetOptimWrapperConstructor', 'DatasetCheckHook', 'NonFiniteLossHook',
    'ExactResumeHook'
]
