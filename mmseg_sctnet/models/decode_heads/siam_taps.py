"""Where SIAM reads its features: the student's and the teacher's taps.

SIAM aligns three student features with the teacher: the **decoder**
feature (SCTNet's ``x_out``, 1/8, the input of its decode head; SDHA),
**stage 3** (1/16) and **stage 4** (1/32; BFA). A *tap* says where each
one is and how wide it is:

* ``dict(index=i, channels=C)``: output ``i`` of the student's
  ``extract_feat`` (backbone, and neck if any) **as returned in training**
  (DDRNet and PIDNet return more outputs in training than at inference);
* ``dict(module='backbone.x.y', channels=C)``: the output of the named
  sub-module of the segmentor, or with ``port='input'`` its first input,
  captured by a forward hook that
  :class:`~mmseg_sctnet.models.segmentors.EncoderDecoderDistill`
  registers. Any module that runs once per training forward can be tapped:
  a backbone stage that is no backbone output, or a module of the decode
  head (whose feature MMSegmentation heads compute inside the head). The
  captured tensor is cloned, so that in-place operations after the module
  (``x += ...``, in-place ReLUs) do not change it.

The widths are checked on every training forward: a tap that reads a
tensor of another width (or an index the model does not have) stops with
one message naming what the config says and what the model produces.

The teacher's BFA features are outputs of its backbone
(``dict(stage3=dict(index=2), stage4=dict(index=3))`` by default), their
widths read from the teacher head's ``in_channels`` where the head consumes
that output, else given as ``channels``.
"""
from contextlib import contextmanager
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import torch.nn as nn
from torch import Tensor

from ...io.errors import ConfigError

__all__ = [
    'STUDENT_TAPS', 'TEACHER_TAPS', 'sctnet_taps', 'parse_student_taps',
    'parse_teacher_taps', 'describe_tap', 'describe_outputs',
    'check_width', 'select_outputs', 'FeatureTaps'
]

#: the student features SIAM aligns, in this order
STUDENT_TAPS = ('decoder', 'stage3', 'stage4')
#: the teacher backbone features BFA aligns
TEACHER_TAPS = ('stage3', 'stage4')
_PORTS = ('output', 'input')
_FIX = ('Write student_taps=dict(decoder=dict(index=0, channels=128), '
        'stage3=dict(index=2, channels=128), stage4=dict(module='
        '\'backbone.layer4\', channels=256)) (docs/siam.md).')


def sctnet_taps(base_channels: int,
                in_index: Sequence[int] = (0, 2, 3)) -> Dict[str, dict]:
    """The taps of SCTNet: ``x_out`` (4c), stage 3 (4c), stage 4 (8c) at
    backbone outputs ``in_index`` (default ``(0, 2, 3)``)."""
    c = base_channels
    return dict(
        decoder=dict(index=in_index[0], channels=4 * c),
        stage3=dict(index=in_index[1], channels=4 * c),
        stage4=dict(index=in_index[2], channels=8 * c))


def _positive_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def parse_student_taps(taps) -> Dict[str, dict]:
    """Check ``student_taps`` and return it in a normal form:
    ``{name: dict(index=i | module=m, port=p, channels=C)}``.

    Raises:
        ConfigError: a missing or unknown tap, neither or both of ``index``
            and ``module``, a bad ``port`` or ``channels``.
    """
    if not isinstance(taps, dict) or set(taps) != set(STUDENT_TAPS):
        got = sorted(taps) if isinstance(taps, dict) else taps
        raise ConfigError(
            f'student_taps={got!r}: SIAM needs exactly the taps '
            f'{list(STUDENT_TAPS)}, each dict(index=...) or dict(module='
            '...) with channels=. ' + _FIX)
    out = {}
    for name in STUDENT_TAPS:
        tap = taps[name]
        where = f'student_taps.{name}'
        if not isinstance(tap, dict):
            raise ConfigError(f'{where}={tap!r} is not a dict. ' + _FIX)
        unknown = set(tap) - {'index', 'module', 'port', 'channels'}
        if unknown:
            raise ConfigError(f'{where} has unknown keys {sorted(unknown)} '
                              '(allowed: index, module, port, channels). ' +
                              _FIX)
        has_index, has_module = 'index' in tap, 'module' in tap
        if has_index == has_module:
            raise ConfigError(
                f'{where}={dict(tap)!r} must give either index (an output '
                'of the backbone/neck in training) or module (a sub-module '
                'of the segmentor, e.g. \'backbone.layer4\'), not '
                f'{"both" if has_index else "neither"}. ' + _FIX)
        if not _positive_int(tap.get('channels')):
            raise ConfigError(
                f'{where}.channels={tap.get("channels")!r}: give the width '
                'of the feature (an int > 0; the SIAM projection is built '
                'for it). ' + _FIX)
        if has_index:
            if 'port' in tap:
                raise ConfigError(f'{where}: port applies to module taps '
                                  'only; remove it. ' + _FIX)
            index = tap['index']
            if not isinstance(index, int) or isinstance(index, bool):
                raise ConfigError(f'{where}.index={index!r} is not an int. ' +
                                  _FIX)
            out[name] = dict(index=index, channels=tap['channels'])
        else:
            module, port = tap['module'], tap.get('port', 'output')
            if not isinstance(module, str) or not module:
                raise ConfigError(f'{where}.module={module!r}: give the '
                                  'dotted name of a sub-module of the '
                                  'segmentor. ' + _FIX)
            if port not in _PORTS:
                raise ConfigError(f'{where}.port={port!r}: use \'output\' '
                                  '(default) or \'input\'. ' + _FIX)
            out[name] = dict(module=module, port=port,
                             channels=tap['channels'])
    return out


def parse_teacher_taps(taps, head_cfg: dict) -> Dict[str, dict]:
    """``teacher_taps`` in normal form ``{stage3/stage4: dict(index=i,
    channels=C)}``; a missing width is read from the teacher head config
    (``in_channels`` at the position of ``i`` in ``in_index``).

    Raises:
        ConfigError: a bad tap, or a width that cannot be told.
    """
    taps = dict(stage3=dict(index=2), stage4=dict(index=3)) \
        if taps is None else taps
    if not isinstance(taps, dict) or set(taps) != set(TEACHER_TAPS):
        raise ConfigError(
            f'teacher_taps={taps!r}: BFA needs exactly the taps '
            f'{list(TEACHER_TAPS)}, each dict(index=<teacher backbone '
            'output>, channels=<optional width>), e.g. teacher_taps=dict('
            'stage3=dict(index=2), stage4=dict(index=3)).')
    in_ch = head_cfg.get('in_channels')
    in_index = head_cfg.get('in_index')
    if isinstance(in_index, int):
        in_index, in_ch = [in_index], [in_ch]
    out = {}
    for name in TEACHER_TAPS:
        tap = taps[name]
        if isinstance(tap, int) and not isinstance(tap, bool):
            tap = dict(index=tap)
        if (not isinstance(tap, dict) or set(tap) - {'index', 'channels'}
                or not isinstance(tap.get('index'), int)):
            raise ConfigError(
                f'teacher_taps.{name}={tap!r}: give dict(index=<teacher '
                'backbone output>, channels=<optional width>).')
        channels = tap.get('channels')
        if channels is None:
            if (isinstance(in_ch, (list, tuple))
                    and isinstance(in_index, (list, tuple))
                    and tap['index'] in in_index):
                channels = in_ch[list(in_index).index(tap['index'])]
            else:
                raise ConfigError(
                    f'teacher_taps.{name}: the teacher head does not consume '
                    f'backbone output {tap["index"]} (in_index={in_index}), '
                    'so its width cannot be read from the head; give it: '
                    f'teacher_taps.{name}=dict(index={tap["index"]}, '
                    'channels=<width>).')
        if not _positive_int(channels):
            raise ConfigError(f'teacher_taps.{name}.channels={channels!r} '
                              'is not an int > 0.')
        out[name] = dict(index=tap['index'], channels=channels)
    return out


def describe_tap(tap: dict, source: str = 'extract_feat') -> str:
    """'output 1 of extract_feat', 'the input of module 'backbone.x''."""
    if 'index' in tap:
        return f'output {tap["index"]} of {source}'
    return f'the {tap["port"]} of module {tap["module"]!r}'


def _shape(x) -> str:
    return str(tuple(x.shape)) if isinstance(x, Tensor) else type(x).__name__


def describe_outputs(feats: Sequence) -> str:
    return ', '.join(f'[{i}] {_shape(f)}' for i, f in enumerate(feats))


def check_width(where: str, tap: dict, x, fix: str,
                source: str = 'extract_feat') -> Tensor:
    """Return ``x`` when it is a 4-D map of ``tap['channels']`` channels,
    else raise one message naming the config value and the tensor
    (``source``: what an index tap indexes)."""
    if isinstance(x, Tensor) and x.dim() == 4 and \
            x.shape[1] == tap['channels']:
        return x
    raise ConfigError(
        f'{where} ({describe_tap(tap, source)}) says '
        f'channels={tap["channels"]}, '
        f'but the model produces {_shape(x)} there (need [N, '
        f'{tap["channels"]}, H, W]). {fix}')


def select_outputs(feats) -> List:
    """The outputs of ``extract_feat`` as a list (one tensor -> [it])."""
    if isinstance(feats, Tensor):
        return [feats]
    return list(feats)


class _TapHook:
    """The forward hook of one module tap: records a clone of the module's
    output or first input while its :class:`FeatureTaps` captures. An
    object rather than a closure, so that a deep copy of the model gets
    hooks that write into the copy's :class:`FeatureTaps`."""

    def __init__(self, taps: 'FeatureTaps', key: str, port: str) -> None:
        self.taps, self.key, self.port = taps, key, port

    def __call__(self, module, args, output) -> None:
        store = self.taps._store
        if store is None:
            return
        if self.port == 'input':  # the first positional input
            x = args[0] if args else None
        else:
            x = output
        if isinstance(x, Tensor):
            x = x.clone()
        store.setdefault(self.key, []).append(x)


class FeatureTaps:
    """Forward hooks that capture the module taps during a training
    forward.

    :meth:`register` puts one hook on each tapped module of ``model``;
    the hooks record only inside :meth:`capture`, and :meth:`tensors`
    reads the record: ``{tap key: tensor}`` (clones, so in-place
    operations after the module do not change them; gradients flow
    through them). A module that did not run, or ran more than once, in
    the block is refused (the tap would be ambiguous).
    """

    def __init__(self) -> None:
        self._taps: Dict[str, Tuple[str, str]] = {}
        self._handles: list = []
        self._store: Optional[Dict[str, List[Tensor]]] = None

    def register(self, model: nn.Module, key: str, module: str,
                 port: str) -> None:
        """Hook ``model.get_submodule(module)`` for the tap ``key``.

        Raises:
            ConfigError: ``model`` has no such sub-module (the message
                lists the children of the deepest existing parent).
        """
        try:
            target = model.get_submodule(module)
        except AttributeError:
            parent, names = model, []
            for part in module.split('.'):
                child = getattr(parent, part, None) if isinstance(
                    parent, nn.Module) else None
                if not isinstance(child, nn.Module):
                    break
                parent, names = child, names + [part]
            children = [n for n, _ in parent.named_children()][:12]
            raise ConfigError(
                f'{key}: the segmentor has no sub-module {module!r} '
                f'({".".join(names) or "the segmentor"} has '
                f'{children}). Name a module of the student, e.g. '
                '\'backbone.<stage>\' or \'decode_head.<layer>\' (print the '
                'model to see the names).') from None
        self._taps[key] = (module, port)
        self._handles.append(
            target.register_forward_hook(_TapHook(self, key, port)))

    @contextmanager
    def capture(self) -> Iterator[Dict[str, List[Tensor]]]:
        """Record the tapped tensors while the block runs; yields the
        record, to be read with :meth:`tensors`."""
        self._store = {}
        try:
            yield self._store
        finally:
            self._store = None

    def tensors(self, store: Dict[str, List[Tensor]],
                keys: Sequence[str]) -> Dict[str, Tensor]:
        """The tensor of each tap in ``keys`` from a :meth:`capture` record.

        Raises:
            ConfigError: a tapped module did not run, or ran more than
                once.
        """
        out = {}
        for key in keys:
            module, port = self._taps[key]
            seen = store.get(key, [])
            if len(seen) != 1:
                raise ConfigError(
                    f'{key} taps the {port} of module {module!r}, which ran '
                    f'{len(seen)} times in this training forward; a tap '
                    'needs a module that runs exactly once (a module shared '
                    'between stages, like a common ReLU, or one the '
                    'training forward skips, cannot be tapped). Tap another '
                    'module or an output of extract_feat (index=...).')
            out[key] = seen[0]
        return out
