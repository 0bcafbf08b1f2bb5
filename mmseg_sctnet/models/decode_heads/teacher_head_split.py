"""How SDHA splits a teacher's decode head: features before fusion, then
fusion + classifier.

Shared decoder head alignment (SDHA) needs three things of the frozen
teacher's decode head:

* **features before fusion** ``concat``: what the head has gathered from
  the backbone stages just before it fuses them, ``[N, C_cat, H/4, W/4]``
  for the heads below;
* **fusion**: the module that turns ``concat`` into the head's decoder
  feature ``[N, channels, H/4, W/4]``;
* **classifier**: ``cls_seg`` (dropout, then the 1x1 ``conv_seg``).

The head's forward must be ``cls_seg(fusion(concat))`` from ``concat`` on.
SDHA projects the student's decoder feature to ``C_cat`` channels and runs
the teacher's frozen fusion and classifier on it.

A split is a :class:`TeacherHeadSplit` registered for a head class with
:func:`register_head_split`; subclasses of a registered head use its split.
Shipped:

========================  ================  =================================
head                      fusion module     features before fusion (C_cat)
========================  ================  =================================
``SegformerHead``         ``fusion_conv``   the four 1x1-projected stages,
                          (1x1 conv+BN+     resized to 1/4 and concatenated
                          ReLU)             (``len(in_channels) x channels``)
``UPerHead``              ``fpn_bottleneck``  the FPN outputs (three 3x3
                          (3x3 conv+BN+     ``fpn_convs`` levels and the PPM
                          ReLU)             level), resized to 1/4 and
                                            concatenated
                                            (``len(in_channels) x channels``)
========================  ================  =================================

To add a head ``MyHead`` whose forward ends in
``self.cls_seg(self.my_fuse(concat))``::

    from mmseg_sctnet.models.decode_heads.teacher_head_split import (
        TeacherHeadSplit, register_head_split)

    @register_head_split('MyHead')
    class MyHeadSplit(TeacherHeadSplit):
        fusion = 'my_fuse'

        def concat_channels(self, head_cfg):
            return head_cfg['channels'] * len(head_cfg['in_channels'])

:meth:`TeacherHeadSplit.run` captures the fusion module's input and output
with a forward hook while the head runs its own ``forward``, so the
teacher's logits are exactly its own; on its first call it checks that
``cls_seg`` of the captured decoder feature gives the head's output (a head
that does more after its fusion is refused with a message).
"""
from typing import Dict, Optional, Sequence

import torch
import torch.nn as nn
from mmseg.registry import MODELS
from torch import Tensor

from ...io.errors import ConfigError

__all__ = [
    'TeacherHeadSplit', 'SegformerHeadSplit', 'UPerHeadSplit',
    'register_head_split', 'get_head_split', 'HEAD_SPLITS'
]

#: head class name -> split class
HEAD_SPLITS: Dict[str, type] = {}


def register_head_split(head_type: str):
    """Class decorator: use the decorated :class:`TeacherHeadSplit` for
    teacher decode heads of class ``head_type`` (a name registered in
    ``mmseg.registry.MODELS``) and its subclasses."""

    def wrap(cls):
        if not (isinstance(cls, type) and issubclass(cls, TeacherHeadSplit)):
            raise TypeError(f'{cls!r} is not a TeacherHeadSplit subclass')
        HEAD_SPLITS[head_type] = cls
        return cls

    return wrap


def _head_class(head_type) -> Optional[type]:
    if isinstance(head_type, type):
        return head_type
    return MODELS.get(head_type) if isinstance(head_type, str) else None


def get_head_split(head_type) -> 'TeacherHeadSplit':
    """The split of a teacher head class (or its registered name).

    Raises:
        ConfigError: no split is registered for the class or any of its
            bases; the message names the head type and what to implement.
    """
    cls = _head_class(head_type)
    name = cls.__name__ if cls is not None else str(head_type)
    for klass in (cls.__mro__ if cls is not None else ()):
        if klass.__name__ in HEAD_SPLITS:
            return HEAD_SPLITS[klass.__name__]()
    raise ConfigError(
        f'SIAM cannot use a teacher with decode head {name}: SDHA (shared '
        'decoder head alignment) runs the teacher head\'s fusion and '
        'classifier on the student\'s projected feature, and no split of '
        f'{name} into "features before fusion" and "fusion + classifier" is '
        f'registered (registered: {", ".join(sorted(HEAD_SPLITS))}). '
        'Train the teacher with one of those heads, or implement the split: '
        'subclass mmseg_sctnet.models.decode_heads.teacher_head_split.'
        'TeacherHeadSplit, set fusion=<name of the module that fuses the '
        f'gathered features>, define concat_channels(head_cfg), and decorate '
        f'it with @register_head_split(\'{name}\') (docs/siam.md, "Distil '
        'your own student from your own teacher").')


class TeacherHeadSplit:
    """The split of one teacher head type (see the module docstring).

    Attributes:
        fusion (str): attribute path of the head's fusion module.
    """

    fusion: str = ''

    # ------------------------------------------------------------------
    # what a split defines
    def concat_channels(self, head_cfg: dict) -> int:
        """Width ``C_cat`` of the features before fusion, from the head's
        config (the SIAM projections are built before the teacher)."""
        raise NotImplementedError

    def fusion_module(self, head: nn.Module) -> nn.Module:
        return head.get_submodule(self.fusion)

    def fuse(self, head: nn.Module, concat: Tensor) -> Tensor:
        """``concat`` -> the head's decoder feature."""
        return self.fusion_module(head)(concat)

    def classify(self, head: nn.Module, decoder: Tensor) -> Tensor:
        """Decoder feature -> logits (``cls_seg``)."""
        return head.cls_seg(decoder)

    # ------------------------------------------------------------------
    def run(self, head: nn.Module, inputs: Sequence[Tensor],
            check: bool = False) -> Dict[str, Tensor]:
        """Run the head's own forward on the backbone outputs ``inputs``.

        Returns ``concat`` (the fusion module's input), ``decoder`` (its
        output) and ``logits`` (the head's output). With ``check``, also
        verifies that ``classify(decoder)`` is the head's output.
        """
        fusion = self.fusion_module(head)
        seen = []

        def capture(module, args, output):
            seen.append((args[0], output))

        handle = fusion.register_forward_hook(capture)
        try:
            logits = head(inputs)
        finally:
            handle.remove()
        name = type(head).__name__
        if len(seen) != 1:
            raise ConfigError(
                f'the teacher head {name}\'s fusion module {self.fusion!r} '
                f'ran {len(seen)} times in one forward; the split of '
                f'{type(self).__name__} must name a module that runs once.')
        concat, decoder = seen[0]
        if check and not torch.equal(self.classify(head, decoder), logits):
            raise ConfigError(
                f'the teacher head {name} does more after its fusion module '
                f'{self.fusion!r} than cls_seg: SDHA needs forward = '
                'cls_seg(fusion(features before fusion)). Override '
                f'{type(self).__name__}.classify (or run) to match the '
                'head\'s forward.')
        return dict(concat=concat, decoder=decoder, logits=logits)


@register_head_split('SegformerHead')
class SegformerHeadSplit(TeacherHeadSplit):
    """``SegformerHead``: the four stages, each projected by its 1x1
    ``convs[i]`` to ``channels`` and resized to the 1/4 stage, concatenated
    (``len(in_channels) x channels``, 4 x 256 = 1024 for the official
    teachers) -> ``fusion_conv`` (1x1 conv + BN + ReLU) -> ``cls_seg``."""

    fusion = 'fusion_conv'

    def concat_channels(self, head_cfg: dict) -> int:
        return head_cfg['channels'] * len(head_cfg['in_channels'])


@register_head_split('UPerHead')
class UPerHeadSplit(TeacherHeadSplit):
    """``UPerHead`` (UPerNet): the FPN outputs before ``fpn_bottleneck``.

    The head builds laterals (1x1 ``lateral_convs`` on all stages but the
    last, the PPM + ``bottleneck`` on the last), adds them top-down, runs a
    3x3 ``fpn_convs[i]`` on every level but the top, resizes all levels to
    the 1/4 stage and concatenates them: ``len(in_channels) x channels``
    channels at 1/4. That concatenation is the features before fusion;
    ``fpn_bottleneck`` (3x3 conv + BN + ReLU to ``channels``) is the
    fusion, then ``cls_seg``. It is the counterpart of SegFormer's
    concatenated stage projections: the last point where the head holds
    one map per pyramid level, all at 1/4.
    """

    fusion = 'fpn_bottleneck'

    def concat_channels(self, head_cfg: dict) -> int:
        return head_cfg['channels'] * len(head_cfg['in_channels'])
