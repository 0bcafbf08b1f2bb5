"""Training-engine pieces registered in MMSegmentation's registries."""
from .optimizer_constructor import SCTNetOptimWrapperConstructor

__all__ = ['SCTNetOptimWrapperConstructor']
