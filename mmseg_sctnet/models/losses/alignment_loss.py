"""Channel-wise distillation (CWD) loss used by SIAM."""
from typing import Dict, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmseg.registry import MODELS
from torch import Tensor


def channel_wise_divergence(feat_s: Tensor,
                            feat_t: Tensor,
                            tau: float = 4.0) -> Tensor:
    """Channel-wise distillation loss (Shu et al., ICCV 2021).

    For every channel, softmax over the ``H*W`` positions of ``feat / tau``
    for the teacher and the student; ``KL(teacher || student) * tau**2``
    summed over channels and batch, divided by ``N * C``.

    Args:
        feat_s: student map ``[N, C, H, W]``.
        feat_t: teacher map ``[N, C, H', W']``. Where sizes differ, both are
            resized (bilinear) to the larger height and width; in practice
            only the student is ever smaller.
        tau: temperature. Default 4.

    Returns:
        A scalar tensor (float32): computed in fp32 from float32 copies of
        the maps with autocast off, also under mixed precision
        (``tools/train.py --amp``), as the official code (``force_fp32``).
    """
    if feat_s.shape[:2] != feat_t.shape[:2]:
        raise ValueError('student and teacher maps need the same N and C, got '
                         f'{tuple(feat_s.shape)} and {tuple(feat_t.shape)}')
    with torch.autocast(feat_s.device.type, enabled=False):
        return _cwd_fp32(feat_s.float(), feat_t.float(), tau)


def _cwd_fp32(feat_s: Tensor, feat_t: Tensor, tau: float) -> Tensor:
    if feat_s.shape[2:] != feat_t.shape[2:]:
        size = (max(feat_s.shape[2], feat_t.shape[2]),
                max(feat_s.shape[3], feat_t.shape[3]))
        if tuple(feat_s.shape[2:]) != size:
            feat_s = F.interpolate(
                feat_s, size, mode='bilinear', align_corners=False)
        if tuple(feat_t.shape[2:]) != size:
            feat_t = F.interpolate(
                feat_t, size, mode='bilinear', align_corners=False)
    n, c = feat_s.shape[:2]
    log_p_t = F.log_softmax(feat_t.reshape(n * c, -1) / tau, dim=1)
    log_p_s = F.log_softmax(feat_s.reshape(n * c, -1) / tau, dim=1)
    kl = (log_p_t.exp() * (log_p_t - log_p_s)).sum()
    return kl * tau**2 / (n * c)


@MODELS.register_module()
class AlignmentLoss(nn.Module):
    """SIAM alignment loss: weighted CWD on four student/teacher pairs.

    The inputs are two lists in the order
    ``[logits, decoder feature, stage 4, stage 3]`` (SDHA logits, SDHA
    feature, BFA stage 4, BFA stage 3). Each term is returned under its own
    name so training logs show what every part contributes.

    Args:
        loss_weight (Sequence[float]): weights of the four terms. Default
            ``[3, 15, 15, 15]`` (official).
        tau (float): CWD temperature. Default 4.
        loss_names (Sequence[str]): names of the four terms.
    """

    def __init__(self,
                 loss_weight: Sequence[float] = (3., 15., 15., 15.),
                 tau: float = 4.0,
                 loss_names: Sequence[str] = ('loss_sdha_logits',
                                              'loss_sdha_feat',
                                              'loss_bfa_stage4',
                                              'loss_bfa_stage3'),
                 inter_transform_type: str = 'linear'):
        super().__init__()
        if isinstance(loss_weight, (int, float)):
            loss_weight = [float(loss_weight)] * 4
        if len(loss_weight) != len(loss_names):
            raise ValueError(f'loss_weight has {len(loss_weight)} entries but '
                             f'there are {len(loss_names)} alignment terms '
                             f'{tuple(loss_names)}')
        if inter_transform_type != 'linear':
            raise ValueError("only inter_transform_type='linear' (1x1 conv "
                             'projections, as released) is implemented')
        self.loss_weight = [float(w) for w in loss_weight]
        self.tau = float(tau)
        self.loss_names = tuple(loss_names)

    @property
    def loss_name(self) -> str:
        return 'loss_siam'

    def forward(self, feats_s: Sequence[Tensor],
                feats_t: Sequence[Tensor]) -> Dict[str, Tensor]:
        if not (len(feats_s) == len(feats_t) == len(self.loss_names)):
            raise ValueError(f'expected {len(self.loss_names)} student and '
                             f'teacher maps, got {len(feats_s)} and '
                             f'{len(feats_t)}')
        return {
            name: w * channel_wise_divergence(s, t, self.tau)
            for name, w, s, t in zip(self.loss_names, self.loss_weight,
                                     feats_s, feats_t)
        }
