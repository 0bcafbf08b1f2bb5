"""SCTNet for MMSegmentation 1.x.

Importing this package first applies the compatibility layer (a fallback
for ``mmcv.ops`` under mmcv-lite, safe checkpoint loading), then registers
every SCTNet module in MMSegmentation's registries. Configs load it with
``custom_imports = dict(imports=['mmseg_sctnet'])``.
"""
from . import compat

compat.apply()

from . import datasets, engine, models  # noqa: E402,F401
from .version import __version__  # noqa: E402,F401

__all__ = ['compat', 'datasets', 'engine', 'models', '__version__']
