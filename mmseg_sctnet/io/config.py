"""Configs: the project's one loader, its ``--cfg-options`` check, the
config edits every inference model gets, and where the configs live.

* :func:`load_config`: the config file plus ``--cfg-options``, where a key
  the config does not define is refused with the closest existing key
  (``trian_cfg.max_iters=4`` -> ``did you mean 'train_cfg'?``); an
  argument the component of a ``type`` takes counts as defined. A key
  written with a leading ``+`` (``+model.test_cfg.crop_size=(512,512)``,
  Hydra's convention) may add any new key.
* :func:`explain_build_errors`: a config argument a component does not take
  (``model.backbone.foo=1``) or an unknown ``type`` becomes one line naming
  the argument, the component and its config path, instead of a
  ``TypeError``/``KeyError`` traceback from deep inside the build.
* :func:`strip_pretrained`, :func:`replace_sync_norm`: the edits of a
  model config built for inference or on a machine without CUDA.
* :data:`REPO_ROOT`, :func:`resolve_config`: the repository whose
  ``configs/`` the tools and benchmarks name.
"""
import difflib
import inspect
import os
import os.path as osp
import re
from contextlib import contextmanager
from typing import Any, Iterator, List, Optional, Union

import mmseg.registry as registries
from mmengine.config import Config
from mmengine.runner import Runner

from .errors import ConfigError, PathError
from .files import check_input_file

__all__ = [
    'REPO_ROOT', 'NEW_KEY_PREFIX', 'load_config', 'resolve_config',
    'check_cfg_options', 'explain_build_errors', 'strip_pretrained',
    'replace_sync_norm', 'SYNC_NORMS'
]

#: the repository root: ``configs/`` lives there in a clone or an editable
#: install (``pip install -e .``)
REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))

#: ``--cfg-options +a.b=1`` may add ``a.b`` where the config has no such key
NEW_KEY_PREFIX = '+'

#: top-level keys MMEngine's Runner (and this project) read when present;
#: they may be set with --cfg-options even when the config leaves them out
OPTIONAL_TOP_LEVEL = frozenset({
    'model', 'work_dir', 'train_dataloader', 'val_dataloader',
    'test_dataloader', 'train_cfg', 'val_cfg', 'test_cfg', 'auto_scale_lr',
    'optim_wrapper', 'param_scheduler', 'val_evaluator', 'test_evaluator',
    'default_hooks', 'custom_hooks', 'data_preprocessor', 'load_from',
    'resume', 'launcher', 'env_cfg', 'log_processor', 'log_level',
    'visualizer', 'default_scope', 'randomness', 'experiment_name',
    'model_wrapper_cfg', 'compile', 'activation_checkpointing',
    'efficient_conv_bn_eval', 'find_unused_parameters', 'custom_imports',
    'tta_model', 'tta_pipeline', 'dataset_check', 'reliability_hooks'
})


def _read_config_file(path: str) -> Config:
    check_input_file(path, 'config file')
    if not path.endswith(('.py', '.json', '.yaml', '.yml')):
        raise PathError(f'config file {path} is not a config (.py, .json '
                        'or .yaml); pass one of the files under configs/.')
    try:
        return Config.fromfile(path)
    except Exception as e:  # syntax error, missing _base_, bad import
        msg = ' '.join(str(e).split())
        raise PathError(
            f'cannot read config file {path}: {type(e).__name__}: '
            f'{msg[:300]}') from None


def load_config(config: Union[str, Config],
                cfg_options: Optional[dict] = None) -> Config:
    """The config of ``config`` (a path, or a ``Config`` returned as it
    is) merged with checked ``cfg_options``: the project's one loader.

    Raises:
        PathError: the file is missing, empty, not a ``.py``/``.json``/
            ``.yaml`` config or does not parse (the parser's message is
            included).
        ConfigError: a ``cfg_options`` key is unknown
            (:func:`check_cfg_options`).
    """
    if isinstance(config, Config):
        cfg = config
    else:
        cfg = _read_config_file(os.fspath(config))
    if cfg_options:
        cfg.merge_from_dict(
            check_cfg_options(cfg, cfg_options, cfg.filename or 'the config'))
    return cfg


def resolve_config(path: str) -> str:
    """A config path as given, else relative to :data:`REPO_ROOT` (the
    benchmarks name configs by their repository path).

    Raises:
        PathError: found in neither place.
    """
    if osp.isfile(path):
        return path
    alt = osp.join(REPO_ROOT, path)
    if osp.isfile(alt):
        return alt
    raise PathError(f'config file not found: {path!r} (also looked in '
                    f'{REPO_ROOT})')


def _close(name: str, options: List[str]) -> str:
    match = difflib.get_close_matches(name, options, n=1, cutoff=0.6)
    return match[0] if match else ''


def check_cfg_options(cfg: Config, options: dict, source: str) -> dict:
    """Refuse ``options`` keys that ``cfg`` does not define.

    Each dotted key is walked through the config (list indices allowed).
    A key is accepted when its whole path exists, when it reaches a value
    that is ``None`` (a placeholder to fill), when it names an argument the
    dict's ``type`` takes (``model.decode_head.dropout_ratio``; for
    ``randomness``: ``Runner.set_randomness``'s), when its first part is
    one of :data:`OPTIONAL_TOP_LEVEL`, or when it starts with
    :data:`NEW_KEY_PREFIX` (the prefix is removed). Returns the options to
    merge.

    Raises:
        ConfigError: naming the key and the closest existing one.
    """
    out = {}
    for key, value in options.items():
        if key.startswith(NEW_KEY_PREFIX):
            out[key[len(NEW_KEY_PREFIX):]] = value
            continue
        _walk(cfg, key, source)
        out[key] = value
    return out


def _accepted_arguments(node: dict, where: str) -> List[str]:
    """Keys a config dict may gain although the config leaves them out:
    the named constructor arguments of its ``type`` (a registered class;
    ``**kwargs`` passed on to a base class are followed), and the
    arguments of ``Runner.set_randomness`` for ``randomness``."""
    if where == 'randomness':
        return _arguments(Runner.set_randomness)
    t = node.get('type')
    cls = _registered(t) if isinstance(t, str) else t
    return _arguments(cls) if inspect.isclass(cls) else []


def _walk(cfg: Config, key: str, source: str) -> None:
    parts = key.split('.')
    node: Any = cfg.to_dict() if isinstance(cfg, Config) else cfg
    for depth, part in enumerate(parts):
        where = '.'.join(parts[:depth])
        if node is None:
            return
        if isinstance(node, dict):
            if part in node:
                node = node[part]
                continue
            if depth == 0 and part == 'randomness':
                node = {}  # its keys: the arguments of set_randomness
                continue
            if depth == 0 and part in OPTIONAL_TOP_LEVEL:
                return
            accepted = _accepted_arguments(node, where)
            if part in accepted:
                return  # an argument the component takes, left at default
            keys = [str(k) for k in node.keys()]
            guess = _close(part, keys + accepted)
            full = '.'.join(parts[:depth] + [part])
            inside = f' (in {where}: {", ".join(sorted(keys)[:12])}' + (
                ', ...)' if len(keys) > 12 else ')') if depth else ''
            hint = (f"did you mean '{'.'.join(parts[:depth] + [guess])}'?"
                    if guess else 'check its spelling.')
            raise ConfigError(
                f"--cfg-options key '{full}' is not in {source}{inside}; "
                f'{hint} To add a new key on purpose, write it as '
                f"'{NEW_KEY_PREFIX}{key}=...'.")
        if isinstance(node, (list, tuple)):
            if not re.fullmatch(r'-?\d+', part) or not (
                    -len(node) <= int(part) < len(node)):
                raise ConfigError(
                    f"--cfg-options key '{key}': {where} in {source} is a "
                    f'list of {len(node)} entries; {part!r} is not an index '
                    f'of it (0 to {len(node) - 1}).')
            node = node[int(part)]
            continue
        raise ConfigError(
            f"--cfg-options key '{key}': {where} in {source} is "
            f'{node!r}, which has no entry {part!r}.')


# ----------------------------------------------------------------------
def _find_paths(cfg: Any, type_name: str, arg: Optional[str],
                prefix: str = '') -> Iterator[str]:
    """Config paths of the dicts of ``type_name`` (holding ``arg``)."""
    if isinstance(cfg, dict):
        t = cfg.get('type')
        t = t if isinstance(t, str) else getattr(t, '__name__', None)
        if t == type_name and (arg is None or arg in cfg):
            yield prefix.rstrip('.')
        for k, v in cfg.items():
            yield from _find_paths(v, type_name, arg, f'{prefix}{k}.')
    elif isinstance(cfg, (list, tuple)):
        for i, v in enumerate(cfg):
            yield from _find_paths(v, type_name, arg, f'{prefix}{i}.')


def _plain(cfg):
    return cfg.to_dict() if isinstance(cfg, Config) else cfg


def _registered(name: str):
    reg = registries
    for r in (reg.MODELS, reg.DATASETS, reg.TRANSFORMS, reg.METRICS,
              reg.HOOKS, reg.VISUALIZERS, reg.VISBACKENDS, reg.OPTIMIZERS,
              reg.OPTIM_WRAPPERS, reg.OPTIM_WRAPPER_CONSTRUCTORS,
              reg.PARAM_SCHEDULERS, reg.DATA_SAMPLERS, reg.LOOPS,
              reg.LOG_PROCESSORS, reg.WEIGHT_INITIALIZERS, reg.RUNNERS):
        obj = r.get(name)
        if obj is not None:
            return obj
    return None


def _arguments(obj) -> List[str]:
    """Named parameters of a function, or of a class's ``__init__`` and of
    the base classes it passes ``**kwargs`` on to."""
    if not inspect.isclass(obj):
        try:
            params = inspect.signature(obj).parameters.values()
        except (TypeError, ValueError):
            return []
        return [p.name for p in params if p.name != 'self'
                and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)]
    names = []
    for klass in obj.__mro__:
        init = klass.__dict__.get('__init__')
        if init is None:
            continue
        try:
            params = inspect.signature(init).parameters.values()
        except (TypeError, ValueError):
            continue
        names += [
            p.name for p in params if p.name != 'self'
            and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)
            and p.name not in names
        ]
        if not any(p.kind == p.VAR_KEYWORD for p in params):
            break
    return names


def _explain_type_error(cfg: Config, source: str, err: TypeError):
    text = str(err)
    m = re.search(
        r"(\w+)\.(\w+)\(\) got an unexpected keyword argument '(\w+)'",
        text)
    if m and m.group(2) != '__init__':  # e.g. Runner.set_randomness
        owner, func, arg = m.groups()
        found = getattr(_registered(owner) or object, func, None)
        guess = _close(arg, _arguments(found) if found else [])
        hint = f" did you mean '{guess}'?" if guess else ''
        return (f'{source}: {owner}.{func} takes no argument '
                f"'{arg}' (from the config or --cfg-options);{hint}")
    if m:
        cls_name, _, arg = m.groups()
        paths = list(_find_paths(_plain(cfg), cls_name, arg))
        where = f'{paths[0]}.{arg}' if paths else arg
        found = _registered(cls_name)
        args = _arguments(found) if found is not None else []
        guess = _close(arg, args)
        hint = f"did you mean '{guess}'? " if guess else ''
        return (f"{source}: {cls_name} (built from '{where}') takes no "
                f"argument '{arg}'; {hint}Remove it from the config or "
                f'--cfg-options. {cls_name} takes: {", ".join(args)}.')
    m = re.search(
        r'(\w+)\.__init__\(\) missing \d+ required (?:positional |'
        r'keyword-only )?arguments?: (.+)$', text)
    if m:
        cls_name, missing = m.groups()
        paths = list(_find_paths(_plain(cfg), cls_name, None))
        where = f" (built from '{paths[0]}')" if paths else ''
        return (f'{source}: {cls_name}{where} needs the argument(s) '
                f'{missing}; add them in the config or with --cfg-options.')
    return None


def _explain_key_error(source: str, err: KeyError):
    text = err.args[0] if err.args else ''
    m = re.match(r'(\S+) is not in the (\w+)::(\w+) registry', str(text))
    if not m:
        return None
    name, scope, registry = m.groups()
    reg = registries
    known: List[str] = []
    for r in vars(reg).values():
        if getattr(r, 'name', None) == registry and hasattr(r, 'module_dict'):
            known += list(r.module_dict)
            if getattr(r, 'parent', None) is not None:
                known += list(r.parent.module_dict)
    guess = _close(name, sorted(set(known)))
    hint = f" did you mean '{guess}'?" if guess else (
        ' Check the spelling, or that the module defining it is imported '
        '(custom_imports).')
    return (f"{source}: type '{name}' is not a registered {registry} "
            f'(scope {scope});{hint}')


@contextmanager
def explain_build_errors(cfg: Config, source: str):
    """Turn config mistakes surfacing while building components into a
    :class:`ConfigError`: an argument a class does not take (or lacks) and
    a ``type`` no registry knows. Other errors pass unchanged."""
    try:
        yield
    except TypeError as err:
        msg = _explain_type_error(cfg, source, err)
        if msg is None:
            raise
        raise ConfigError(msg) from None
    except KeyError as err:
        msg = _explain_key_error(source, err)
        if msg is None:
            raise
        raise ConfigError(msg) from None


# ----------------------------------------------------------------------
SYNC_NORMS = ('SyncBN', 'MMSyncBN', 'TorchSyncBN', 'SyncBatchNorm')


def replace_sync_norm(cfg, new: str = 'BN') -> int:
    """Replace every SyncBN-type norm config in ``cfg`` by ``new``.

    Walks dicts and lists in place; returns how many were replaced.
    """
    n = 0
    if isinstance(cfg, dict):
        if cfg.get('type') in SYNC_NORMS:
            cfg['type'] = new
            n += 1
        for v in cfg.values():
            n += replace_sync_norm(v, new)
    elif isinstance(cfg, (list, tuple)):
        for v in cfg:
            n += replace_sync_norm(v, new)
    return n


def strip_pretrained(cfg) -> None:
    """Remove every ``Pretrained`` init (also inside a list ``init_cfg``)
    and ``pretrained=`` path, in place: an inference or benchmark model
    reads only its own checkpoint, never ImageNet or teacher files."""
    if isinstance(cfg, dict):
        if isinstance(cfg.get('pretrained'), str):
            cfg['pretrained'] = None
        init = cfg.get('init_cfg')
        if isinstance(init, dict) and init.get('type') == 'Pretrained':
            cfg['init_cfg'] = None
        elif isinstance(init, (list, tuple)):
            cfg['init_cfg'] = [
                c for c in init
                if not (isinstance(c, dict) and c.get('type') == 'Pretrained')
            ] or None
        for v in cfg.values():
            strip_pretrained(v)
    elif isinstance(cfg, (list, tuple)):
        for v in cfg:
            strip_pretrained(v)
