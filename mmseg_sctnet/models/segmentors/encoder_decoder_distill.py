"""Segmentor that trains a student with SIAM and deploys the student alone."""
import copy
from typing import Dict, List, Optional

from mmengine.logging import print_log
from mmengine.model import ModuleList
from mmseg.models.segmentors import EncoderDecoder
from mmseg.registry import MODELS
from mmseg.utils import add_prefix
from torch import Tensor

from ...io.errors import CheckpointMismatchError, ConfigError
from ...io.state_dict import explain_mismatch, find_mismatch
from ..decode_heads.siam_taps import FeatureTaps
from ..decode_heads.vit_guidance_head import VitGuidanceHead
from ..deploy_form import switch_to_deploy


def _is_guidance_cfg(cfg) -> bool:
    if not isinstance(cfg, dict):
        return False
    t = cfg.get('type')
    cls = MODELS.get(t) if isinstance(t, str) else t
    return isinstance(cls, type) and issubclass(cls, VitGuidanceHead)


@MODELS.register_module(name=['EncoderDecoderDistill',
                              'EncoderDecoder_Distill'])
class EncoderDecoderDistill(EncoderDecoder):
    """Encoder-decoder with a training-only frozen teacher (SIAM).

    The student is any MMSegmentation backbone (+ neck) and decode head:
    SCTNet, or e.g. DDRNet or PIDNet, whose backbones return several
    outputs in training and whose heads' ``loss_by_feat`` expects them (the
    decode head gets the outputs of ``extract_feat`` as MMSegmentation's
    ``EncoderDecoder`` gives them). The teacher is a segmentor described in
    the guidance head (a SegFormer in the paper; see
    :class:`VitGuidanceHead`).

    The auxiliary heads are kept in a list, ``siam_head`` (the
    :class:`VitGuidanceHead`) last, so that the parameter names are the
    official ones: ``auxiliary_head.0.*`` (AU_SCTHead) and
    ``auxiliary_head.1.*`` (projections and teacher); a student without
    auxiliary heads has the guidance head at ``auxiliary_head.0``. An
    official config's
    model section (``auxiliary_head=[AU_SCTHead, VitGuidanceHead]``, the
    guidance head without teacher architecture, the teacher file in its
    ``init_cfg``) builds the same network; the teacher is inferred as the
    official head builds it (:func:`infer_official_teacher`). Auxiliary
    heads and the teacher head without ``num_classes`` take the decode
    head's.

    * :meth:`loss` runs the backbone once and feeds its outputs to the decode
      head (CE), the auxiliary head (CE) and, with SIAM, the guidance head
      together with the input image; the alignment terms appear as
      ``siam.loss_sdha_logits``, ``siam.loss_sdha_feat``,
      ``siam.loss_bfa_stage4`` and ``siam.loss_bfa_stage3``.
    * The guidance head's ``student_taps`` that name a module
      (``dict(module='backbone.context_branch_layers.1', ...)``) are read
      by forward hooks registered here on those modules; they record only
      inside :meth:`loss` (:class:`~..decode_heads.siam_taps.FeatureTaps`).
      A teacher described by its own config (``teacher_config``) must have
      been trained on inputs normalised as this model's
      ``data_preprocessor`` normalises them (checked when built).
    * :meth:`predict`, ``_forward`` (``mode='tensor'``) and export use the
      backbone and the decode head only; the teacher is never run there.

    The guidance head is not built at all when ``use_siam=False`` (plain
    student training, the ablation). When ``train_cfg`` is None (what
    ``mmseg.apis.init_model`` and ``tools/test.py`` do) no auxiliary head is
    built: the inference model is the deployed CNN (backbone + SCTHead),
    needs no teacher file, and the training-only tensors of a checkpoint are
    skipped. Loading a checkpoint into such a model is strict.

    Args:
        siam_head (dict, optional): the :class:`VitGuidanceHead` config.
        use_siam (bool): build and train with the guidance head. Default True.
        Other arguments as :class:`mmseg.models.EncoderDecoder`.
    """

    def __init__(self,
                 backbone: dict,
                 decode_head: dict,
                 neck: Optional[dict] = None,
                 auxiliary_head=None,
                 siam_head: Optional[dict] = None,
                 train_cfg: Optional[dict] = None,
                 test_cfg: Optional[dict] = None,
                 data_preprocessor: Optional[dict] = None,
                 pretrained: Optional[str] = None,
                 init_cfg: Optional[dict] = None,
                 use_siam: bool = True):
        self.use_siam = bool(use_siam) and train_cfg is not None
        self.inference_only = train_cfg is None
        num_classes = decode_head.get('num_classes')
        heads = []
        if auxiliary_head is not None:
            heads = list(auxiliary_head) if isinstance(
                auxiliary_head, (list, tuple)) else [auxiliary_head]
        if siam_head is not None:
            heads.append(siam_head)
        heads = [copy.deepcopy(h) for h in heads]
        # Heads that are not built: every auxiliary head of an inference
        # model, the guidance head without SIAM. Only trailing heads may be
        # skipped, so the official indices (auxiliary_head.0/.1) never shift.
        self._skipped_heads: List[int] = []
        kept = []
        for idx, cfg in enumerate(heads):
            if _is_guidance_cfg(cfg):
                # the teacher head takes the guidance head's num_classes
                # (official configs), else the decode head's; a head written
                # without teacher_head gets it inferred (VitGuidanceHead)
                cfg.setdefault('num_classes', num_classes)
                if cfg.get('teacher_head') is not None:
                    cfg['teacher_head'].setdefault('num_classes',
                                                   cfg['num_classes'])
                skip = not self.use_siam
            else:
                cfg.setdefault('num_classes', num_classes)
                skip = self.inference_only
            if skip:
                self._skipped_heads.append(idx)
                continue
            if self._skipped_heads:
                raise ValueError('the VitGuidanceHead must come last among '
                                 'the auxiliary heads (official layout)')
            kept.append(cfg)
        super().__init__(
            backbone=backbone,
            decode_head=decode_head,
            neck=neck,
            auxiliary_head=kept or None,
            train_cfg=train_cfg,
            test_cfg=test_cfg,
            data_preprocessor=data_preprocessor,
            pretrained=pretrained,
            init_cfg=init_cfg)
        self._register_load_state_dict_pre_hook(self._check_checkpoint_keys)
        self._feature_taps = FeatureTaps()
        self._tap_keys: Dict[int, Dict[str, str]] = {}
        self._register_student_taps()
        self._check_teacher_normalization()

    def _init_auxiliary_head(self, auxiliary_head) -> None:
        """Build the auxiliary heads into an MMEngine ``ModuleList``.

        MMSegmentation uses a plain ``nn.ModuleList``, which MMEngine's
        ``init_weights`` does not descend into: the heads' own
        ``init_weights`` (the teacher checkpoint loading among them) would
        silently never run.
        """
        if not auxiliary_head:
            self.auxiliary_head = None
            return
        if not isinstance(auxiliary_head, (list, tuple)):
            auxiliary_head = [auxiliary_head]
        self.auxiliary_head = ModuleList(
            [MODELS.build(cfg) for cfg in auxiliary_head])

    # ------------------------------------------------------------------
    def _guidance_items(self):
        if not self.with_auxiliary_head:
            return []
        return [(i, h) for i, h in enumerate(self.auxiliary_head)
                if isinstance(h, VitGuidanceHead)]

    def _register_student_taps(self) -> None:
        """Forward hooks for the guidance heads' module taps."""
        items = self._guidance_items()
        for idx, head in items:
            keys = {}
            for name, (module, port) in head.module_taps().items():
                key = (f'student_taps.{name}' if len(items) == 1
                       else f'auxiliary_head.{idx}.student_taps.{name}')
                if any(module == f'auxiliary_head.{i}'
                       or module.startswith(f'auxiliary_head.{i}.')
                       for i, _ in items):
                    raise ConfigError(
                        f'{key}.module={module!r} is inside the guidance '
                        'head (teacher or projections); tap a module of the '
                        'student (backbone, neck, decode_head).')
                self._feature_taps.register(self, key, module, port)
                keys[name] = key
            self._tap_keys[idx] = keys

    def _check_teacher_normalization(self) -> None:
        """A teacher from ``teacher_config`` sees this model's normalised
        batch: its training normalisation must be the same."""
        pre = self.data_preprocessor
        mean, std = getattr(pre, 'mean', None), getattr(pre, 'std', None)
        if mean is None or std is None:
            return
        ours = dict(mean=[round(float(v), 4) for v in mean.flatten()],
                    std=[round(float(v), 4) for v in std.flatten()],
                    bgr_to_rgb=bool(getattr(pre, 'channel_conversion',
                                            False)))
        for _, head in self._guidance_items():
            theirs = head.teacher_normalization
            if theirs is None:
                continue
            theirs = dict(mean=[round(float(v), 4) for v in theirs['mean']],
                          std=[round(float(v), 4) for v in theirs['std']],
                          bgr_to_rgb=theirs['bgr_to_rgb'])
            if theirs != ours:
                raise ConfigError(
                    f'The teacher (teacher_config={head.teacher_config!r}) '
                    f'was trained on inputs normalised with {theirs}, but '
                    f'this model\'s data_preprocessor gives {ours}; the '
                    'teacher sees the student\'s normalised batch. Give '
                    'model.data_preprocessor the teacher\'s mean, std and '
                    'bgr_to_rgb.')

    @property
    def guidance_heads(self) -> List[VitGuidanceHead]:
        return [h for _, h in self._guidance_items()]

    @property
    def siam_prefixes(self) -> tuple:
        """State-dict prefixes of the guidance heads (projections and
        teacher): ``('auxiliary_head.1.',)`` for SCTNet,
        ``('auxiliary_head.0.',)`` for a student without auxiliary heads,
        ``()`` without SIAM. Every other tensor is the student's."""
        return tuple(
            f'auxiliary_head.{i}.' for i, _ in self._guidance_items())

    def _check_checkpoint_keys(self, state_dict, prefix, *args, **kwargs):
        """Load-time checks on a checkpoint's keys.

        * Tensors of heads that were not built (every auxiliary head of an
          inference model, the teacher with ``use_siam=False``) are dropped
          with one log line.
        * A classifier trained for another number of classes stops loading
          with a message naming both numbers and the fix.
        * An inference model (``train_cfg=None``: ``init_model``,
          ``tools/test.py``) must receive every tensor of its backbone and
          decode head with the right shape: a checkpoint of another model
          (SCTNet-S vs -B, a teacher file, ...) is refused instead of being
          loaded partly.
        """
        dropped = 0
        for idx in self._skipped_heads:
            p = f'{prefix}auxiliary_head.{idx}.'
            for k in [k for k in state_dict if k.startswith(p)]:
                del state_dict[k]
                dropped += 1
        if dropped:
            print_log(
                f'Skipped {dropped} training-only tensors of the checkpoint '
                '(auxiliary head, SIAM projections, teacher): those heads are '
                'not built for inference or with use_siam=False.',
                logger='current')
        key = f'{prefix}decode_head.conv_seg.weight'
        if key in state_dict:
            n_ckpt = state_dict[key].shape[0]
            n_cfg = self.decode_head.conv_seg.weight.shape[0]
            if n_ckpt != n_cfg:
                raise CheckpointMismatchError(
                    f'The checkpoint\'s classifier predicts {n_ckpt} classes '
                    f'but the config builds {n_cfg} (num_classes of '
                    'decode_head/auxiliary_head). Use the config that '
                    f'matches the checkpoint (num_classes={n_ckpt}); to '
                    'fine-tune on a dataset with other classes, start from '
                    'its backbone '
                    'only: --cfg-options load_from=None '
                    'model.backbone.init_cfg.type=Pretrained '
                    'model.backbone.init_cfg.checkpoint=<this checkpoint>.')
        if self.inference_only:
            own = {
                k: v
                for k, v in self.state_dict().items()
                if k.startswith(('backbone.', 'decode_head.'))
            }
            state = {
                k[len(prefix):]: v
                for k, v in state_dict.items() if k.startswith(prefix)
            }
            mismatch = find_mismatch(own, state)
            mismatch['unexpected'] = []  # other heads: dropped above
            if mismatch['missing'] or mismatch['mismatched']:
                raise CheckpointMismatchError(
                    explain_mismatch(
                        'The checkpoint does not hold this config\'s '
                        'network (backbone and decode head)',
                        mismatch,
                        len(own),
                        state.keys(),
                        fix='Is it a checkpoint of another model size '
                        '(SCTNet-S vs SCTNet-B, base_channels 32 vs 64) or '
                        'a teacher/backbone file? Use the config the '
                        'checkpoint was trained with.'))

    # ------------------------------------------------------------------
    def loss(self, inputs: Tensor, data_samples) -> dict:
        """CE of the decode/auxiliary heads plus the SIAM terms.

        Args:
            inputs: normalised images ``[N, 3, H, W]``.
            data_samples: ``SegDataSample`` list with ``gt_sem_seg``.
        """
        with self._feature_taps.capture() as record:
            x = self.extract_feat(inputs)
            losses = dict()
            losses.update(self._decode_head_forward_train(x, data_samples))
            if self.with_auxiliary_head:
                for idx, head in enumerate(self.auxiliary_head):
                    if isinstance(head, VitGuidanceHead):
                        # the guidance heads come last: every student
                        # module has run
                        keys = self._tap_keys.get(idx, {})
                        found = self._feature_taps.tensors(
                            record, list(keys.values()))
                        tapped = {n: found[k] for n, k in keys.items()}
                        losses.update(
                            add_prefix(head.loss(x, inputs, tapped), 'siam'))
                    else:
                        loss_aux = head.loss(x, data_samples, self.train_cfg)
                        losses.update(add_prefix(loss_aux, f'aux_{idx}'))
        return losses

    def switch_to_deploy(self, **kwargs):
        """Convert to the inference graph in place; see
        :func:`mmseg_sctnet.models.switch_to_deploy`."""
        return switch_to_deploy(self, **kwargs)
