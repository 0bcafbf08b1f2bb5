"""SCTNet for MMSegmentation 1.x.

Importing this package first applies the compatibility layer (a fallback
for ``mmcv.ops`` under mmcv-lite, safe checkpoint loading), then registers
every SCTNet module in MMSegmentation's registries. Configs load it with
``custom_imports = dict(imports=['mmseg_sctnet'])``.
"""
from . import compat

compat.apply()

from . import (datasets, engine, evaluation, models,  # noqa: E402,F401
               visualization)
from .version import __version__  # noqa: E402,F401

__all__ = [
    'compat', 'datasets', 'engine', 'evaluation', 'models', 'visualization',
    '__version__'
]
