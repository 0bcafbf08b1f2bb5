"""Fallback for ``mmcv.ops`` when mmcv's compiled extension is absent.

MMSegmentation 1.2.2 imports a few names from ``mmcv.ops`` at module level
(``point_sample`` in several places, ``sigmoid_focal_loss`` in the focal loss).
With ``mmcv-lite`` (no compiled ``mmcv._ext``) ``import mmcv.ops`` fails and so
``import mmseg.models`` fails, although SCTNet needs none of those kernels.

:func:`install` puts a small stand-in module at ``sys.modules['mmcv.ops']``:

* ``point_sample`` and ``bilinear_grid_sample`` are loaded from mmcv's own
  ``ops/point_sample.py``, which is pure PyTorch.
* every other name resolves to a placeholder class. Importing it works (and
  ``isinstance`` checks against it are simply False); calling or
  instantiating it raises :class:`MissingCompiledOpError`, which names the op
  and how to get it.

Nothing is replaced when a full mmcv with compiled ops is installed.
"""
import importlib.util
import os.path as osp
import sys
import types

import mmcv

__all__ = ['MissingCompiledOpError', 'install', 'has_compiled_ops']

_MESSAGE = (
    "mmcv.ops.{name} needs mmcv's compiled CUDA/C++ ops, but only mmcv-lite "
    '(no mmcv._ext) is installed. SCTNet itself does not need it; a model or '
    'loss in your config does. Install a full mmcv 2.1.0 built for your '
    'torch/CUDA (see https://mmcv.readthedocs.io/en/latest/get_started/'
    'installation.html) or remove that component from the config.')


class MissingCompiledOpError(RuntimeError):
    """Raised when a compiled mmcv op is used while only mmcv-lite is present."""


def has_compiled_ops() -> bool:
    """True when mmcv's compiled extension ``mmcv._ext`` can be imported."""
    try:
        return importlib.util.find_spec('mmcv._ext') is not None
    except (ImportError, ValueError):
        return False


def _placeholder(name: str) -> type:

    def _fail(*args, **kwargs):
        raise MissingCompiledOpError(_MESSAGE.format(name=name))

    # A class, so that ``isinstance(m, DeformConv2d)`` style checks work.
    return type(name, (), {
        '__new__': staticmethod(lambda cls, *a, **k: _fail()),
        '__call__': _fail,
        '__doc__': f'Placeholder for mmcv.ops.{name} (compiled op missing).',
        '__module__': 'mmcv.ops',
    })


def install() -> bool:
    """Install the stand-in ``mmcv.ops`` if needed.

    Returns:
        bool: True if the fallback was installed, False if the real
        ``mmcv.ops`` is usable (or the fallback is already in place).
    """
    existing = sys.modules.get('mmcv.ops')
    if existing is not None:
        return False
    if has_compiled_ops():
        return False

    module = types.ModuleType('mmcv.ops')
    module.__file__ = __file__
    module.__doc__ = 'mmseg_sctnet fallback for mmcv.ops (mmcv-lite).'
    module.__path__ = []  # a package, so "mmcv.ops.x" lookups fail cleanly
    module.IS_SCTNET_FALLBACK = True

    src = osp.join(osp.dirname(mmcv.__file__), 'ops', 'point_sample.py')
    if osp.isfile(src):
        spec = importlib.util.spec_from_file_location(
            'mmcv.ops.point_sample', src)
        point_sample_mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(point_sample_mod)
        sys.modules['mmcv.ops.point_sample'] = point_sample_mod
        module.point_sample = point_sample_mod.point_sample
        module.bilinear_grid_sample = point_sample_mod.bilinear_grid_sample

    cache = {}

    def __getattr__(name):  # PEP 562 module-level getattr
        if name.startswith('__'):
            raise AttributeError(name)
        if name not in cache:
            cache[name] = _placeholder(name)
        return cache[name]

    module.__getattr__ = __getattr__
    sys.modules['mmcv.ops'] = module
    mmcv.ops = module
    return True
