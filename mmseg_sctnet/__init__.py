"""SCTNet for MMSegmentation 1.x.

Importing this package first applies the compatibility layer (a fallback
for ``mmcv.ops`` under mmcv-lite) and safe checkpoint loading (every
scheme MMEngine knows reads with ``weights_only=True``), then registers
every SCTNet module in MMSegmentation's registries. Configs load it with
``custom_imports = dict(imports=['mmseg_sctnet'])``.

The packages, from the bottom up (each imports only those below it):
``io`` (files, checkpoints, configs, errors, CPU facts) and ``compat``;
``models``; ``datasets``, ``evaluation``, ``visualization``; ``pretrain``;
``deploy``; ``engine``; ``benchmark`` and ``experiments``; ``apis`` (the
bodies of the command-line tools). CONTRIBUTING.md says where new code
goes.
"""
from . import compat

compat.apply()

from .io import checkpoint, checkpoint_schemes  # noqa: E402

checkpoint.register_safe_globals()
checkpoint_schemes.register_safe_schemes()

from . import (datasets, engine, evaluation, models,  # noqa: E402,F401
               visualization)
from .version import __version__  # noqa: E402,F401

__all__ = [
    'compat', 'datasets', 'engine', 'evaluation', 'models', 'visualization',
    '__version__'
]
