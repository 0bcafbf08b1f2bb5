"""Putting a checkpoint's tensors into a module, and explaining a misfit.

Every place that puts a checkpoint's tensors into a module -- the
backbone's ImageNet weights (:meth:`SCTNet.load_pretrained`), the SIAM
teacher (:meth:`VitGuidanceHead.load_teacher`), the segmentor's load-time
check and the inference loader (:mod:`mmseg_sctnet.deploy.model`) -- uses
:func:`load_checked_state_dict` (or, for a load-time hook,
:func:`find_mismatch` + :func:`explain_mismatch`), so a file that does not
fit is explained the same way everywhere: how many tensors are missing,
differ in shape or have no place in the module, with examples, what the
file holds, and what to do. Files are read by
:func:`mmseg_sctnet.io.checkpoint.read_checkpoint` (paths and URLs,
weights only).
"""
from collections import Counter, OrderedDict
from typing import Callable, Dict, List, Mapping, Sequence, Union

import torch
from mmengine.logging import print_log

from .checkpoint import read_checkpoint
from .errors import CheckpointMismatchError

__all__ = [
    'extract_state_dict', 'strip_prefix', 'summarize_keys', 'find_mismatch',
    'explain_mismatch', 'load_checked_state_dict', 'load_file_into'
]

Required = Union[None, Sequence[str], Callable[[str], bool]]


def extract_state_dict(checkpoint) -> Dict[str, torch.Tensor]:
    """The parameter dict inside a loaded checkpoint, ``module.`` stripped.

    Accepts MMEngine/mmcv checkpoints (``state_dict``), timm/DeiT style files
    (``model``) and bare state dicts.
    """
    if not isinstance(checkpoint, dict):
        raise TypeError(f'expected a dict checkpoint, got {type(checkpoint)}')
    for key in ('state_dict', 'model', 'model_state'):
        if key in checkpoint and isinstance(checkpoint[key], dict):
            checkpoint = checkpoint[key]
            break
    out = OrderedDict()
    for k, v in checkpoint.items():
        if not isinstance(v, torch.Tensor):
            continue
        out[k[7:] if k.startswith('module.') else k] = v
    return out


def strip_prefix(state: Mapping[str, torch.Tensor], own_keys,
                 prefixes: Sequence[str]) -> 'OrderedDict':
    """Keys without the first of ``prefixes`` that makes them fit.

    When no key of ``state`` is a key of the module but some start with a
    prefix (e.g. ``backbone.`` in a whole-segmentor checkpoint), the tensors
    under that prefix are kept with it removed (MMEngine's ``Pretrained``
    ``prefix`` semantics); otherwise ``state`` is returned as it is.
    """
    own_keys = set(own_keys)
    state = OrderedDict(state)
    if any(k in own_keys for k in state):
        return state
    for prefix in prefixes:
        if prefix and any(k.startswith(prefix) for k in state):
            return OrderedDict((k[len(prefix):], v) for k, v in state.items()
                               if k.startswith(prefix))
    return state


def summarize_keys(keys, top: int = 5) -> str:
    """What a set of tensor names looks like, e.g.
    ``'backbone.* (152), decode_head.* (12)'``."""
    groups = Counter(
        k.split('.', 1)[0] + ('.*' if '.' in k else '') for k in keys)
    shown = ', '.join(f'{g} ({n})' for g, n in groups.most_common(top))
    rest = len(groups) - top
    return shown + (f' and {rest} other groups' if rest > 0 else '')


def _required_filter(required: Required) -> Callable[[str], bool]:
    if required is None:
        return lambda k: True
    if callable(required):
        return required
    prefixes = tuple(required)
    return lambda k: k.startswith(prefixes)


def find_mismatch(own: Mapping[str, torch.Tensor],
                  state: Mapping[str, torch.Tensor],
                  required: Required = None) -> Dict[str, List[str]]:
    """Compare a module's tensors ``own`` with a file's ``state``.

    Returns ``missing`` (required keys of ``own`` absent from ``state``;
    BatchNorm ``num_batches_tracked`` counters are never required),
    ``mismatched`` (``'key: file (..) vs model (..)'``) and ``unexpected``
    (keys of ``state`` the module does not have).
    """
    needed = _required_filter(required)
    missing = [
        k for k in own if needed(k) and k not in state
        and not k.endswith('num_batches_tracked')
    ]
    mismatched = [
        f'{k}: file {tuple(v.shape)} vs model {tuple(own[k].shape)}'
        for k, v in state.items()
        if k in own and tuple(own[k].shape) != tuple(v.shape)
    ]
    unexpected = [k for k in state if k not in own]
    return dict(missing=missing, mismatched=mismatched, unexpected=unexpected)


def explain_mismatch(headline: str,
                     mismatch: Dict[str, List[str]],
                     n_required: int,
                     file_keys,
                     detail: str = '',
                     fix: str = '',
                     report_unexpected: bool = True) -> str:
    """One message for a file that does not fit a module.

    ``headline`` names the file and the module (``'Teacher checkpoint X
    does not fit the teacher in the config'``); then the counts with
    examples, what the file holds (:func:`summarize_keys`), ``detail``
    (e.g. the sizes read from the shapes) and ``fix``.
    """
    missing = mismatch['missing']
    mismatched = mismatch['mismatched']
    unexpected = mismatch['unexpected'] if report_unexpected else []
    parts = []
    if missing:
        parts.append(f'missing tensors: {len(missing)} of {n_required} '
                     f'(e.g. {missing[:3]})')
    if mismatched:
        parts.append(f'{len(mismatched)} tensors differ in shape (e.g. '
                     f'{mismatched[:2]})')
    if unexpected:
        parts.append(f'{len(unexpected)} tensors of the file have no place '
                     f'in the model (e.g. {unexpected[:3]})')
    file_keys = list(file_keys)
    text = (f'{headline}: ' + '; '.join(parts) + '. The file holds '
            f'{len(file_keys)} tensors: {summarize_keys(file_keys)}.')
    for extra in (detail, fix):
        if extra:
            text += ' ' + extra.strip()
    return text


def load_checked_state_dict(module: torch.nn.Module,
                            state: Mapping[str, torch.Tensor],
                            headline: str,
                            strict: bool = True,
                            required: Required = None,
                            allow_unexpected: bool = False,
                            detail: str = '',
                            fix: str = '',
                            source: str = 'checkpoint',
                            logger: str = 'current') -> Dict[str, list]:
    """Load ``state`` into ``module``; explain a file that does not fit.

    Args:
        module: where the tensors go.
        state: ``{name: tensor}`` with the module's key names.
        headline: start of the error message (names file and module).
        strict: refuse (``CheckpointMismatchError``) when a ``required``
            tensor is missing, a tensor differs in shape, or (unless
            ``allow_unexpected``) the file has tensors the module lacks.
            ``strict=False`` loads every tensor whose name and shape fit
            and logs what was not loaded; it still refuses a file of which
            nothing fits.
        required: the module's keys that must be in the file: prefixes, a
            predicate, or None (all).
        allow_unexpected: tolerate tensors the module has no place for
            (e.g. the ImageNet classifier of a pretrained backbone file);
            they are listed in the log.
        detail, fix: appended to the message (what the shapes tell, what
            to do).
        source: what was loaded, for the log line (``'Loaded {source}:
            n/N tensors; ...'``).

    Returns:
        ``dict(missing=..., mismatched=..., unexpected=..., loaded=n)``.
    """
    own = module.state_dict()
    mismatch = find_mismatch(own, state, required)
    needed = _required_filter(required)
    n_required = sum(1 for k in own if needed(k))
    to_load = OrderedDict(
        (k, v) for k, v in state.items()
        if k in own and tuple(v.shape) == tuple(own[k].shape))
    refuse = mismatch['missing'] or mismatch['mismatched'] or (
        mismatch['unexpected'] and not allow_unexpected)
    if (strict and refuse) or not to_load:
        if not to_load:
            headline += ' (no tensor of the file fits it)'
        raise CheckpointMismatchError(
            explain_mismatch(
                headline,
                mismatch,
                n_required,
                state.keys(),
                detail=detail,
                fix=fix,
                report_unexpected=not allow_unexpected or not to_load))
    module.load_state_dict(to_load, strict=False)
    skipped = []
    if mismatch['missing']:
        skipped.append(f'{len(mismatch["missing"])} tensors of the model '
                       f'not in the file, kept as initialised (e.g. '
                       f'{mismatch["missing"][:3]})')
    if mismatch['mismatched']:
        skipped.append(f'{len(mismatch["mismatched"])} of another shape, '
                       f'not loaded (e.g. {mismatch["mismatched"][:2]})')
    if mismatch['unexpected']:
        skipped.append(f'{len(mismatch["unexpected"])} of the file unused '
                       f'({summarize_keys(mismatch["unexpected"])})')
    print_log(
        f'Loaded {source}: {len(to_load)}/{n_required} tensors' +
        (': ' + '; '.join(skipped) if skipped else ''),
        logger=logger,
        level=30 if mismatch['missing'] or mismatch['mismatched'] else 20)
    mismatch['loaded'] = len(to_load)
    return mismatch


def load_file_into(module: torch.nn.Module,
                   filename: str,
                   what: str,
                   fix: str = '',
                   prefixes: Sequence[str] = (),
                   strict: bool = True,
                   allow_unexpected: bool = False,
                   required: Required = None,
                   detail: str = '') -> Dict[str, list]:
    """Read ``filename`` (path or URL, weights only) and load it into
    ``module`` with :func:`load_checked_state_dict`.

    ``prefixes``: tried in order when the file's keys do not fit as they
    are (:func:`strip_prefix`), e.g. ``('backbone.', )`` for a backbone
    taken from a whole-segmentor checkpoint. ``what`` names the file in the
    messages (``'ImageNet-pretrained SCTNet backbone'``).
    """
    state = extract_state_dict(read_checkpoint(filename, what, fix))
    state = strip_prefix(state, module.state_dict().keys(), prefixes)
    return load_checked_state_dict(
        module,
        state,
        headline=f'{what} {filename} does not fit {type(module).__name__}',
        strict=strict,
        required=required,
        allow_unexpected=allow_unexpected,
        detail=detail,
        fix=fix,
        source=f'{what} {filename}')
