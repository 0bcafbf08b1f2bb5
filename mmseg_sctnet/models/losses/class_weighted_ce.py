"""Cross-entropy with class weights that works with ignored pixels."""
import torch
from mmseg.models.losses import CrossEntropyLoss
from mmseg.models.losses.cross_entropy_loss import cross_entropy
from mmseg.registry import MODELS
from torch import Tensor


def class_weighted_cross_entropy(pred: Tensor,
                                 label: Tensor,
                                 weight=None,
                                 class_weight=None,
                                 reduction: str = 'mean',
                                 avg_factor=None,
                                 ignore_index: int = -100,
                                 avg_non_ignore: bool = False) -> Tensor:
    """MMSegmentation's ``cross_entropy`` with its class-weighted mean
    computed over the labelled pixels.

    MMSegmentation 1.x averages a class-weighted loss by the class weights
    of every label value, indexing ``class_weight`` with each one, so the
    first label holding the ignore index (255) stops training with an
    ``IndexError``. Here the average factor is the sum of the class weights
    of the pixels that are not ignored, i.e. PyTorch's weighted mean
    ``sum_i w[y_i] CE_i / sum_i w[y_i]`` (times the pixel weights of a
    sampler such as OHEM in the numerator, as MMSegmentation does). Without
    class weights, with another reduction or an explicit ``avg_factor`` it
    is MMSegmentation's function unchanged.
    """
    if class_weight is not None and reduction == 'mean' and \
            avg_factor is None:
        valid = label != ignore_index
        safe = torch.where(valid, label, torch.zeros_like(label))
        avg_factor = (class_weight[safe] * valid).sum()
    return cross_entropy(
        pred,
        label,
        weight=weight,
        class_weight=class_weight,
        reduction=reduction,
        avg_factor=avg_factor,
        ignore_index=ignore_index,
        avg_non_ignore=avg_non_ignore)


@MODELS.register_module()
class ClassWeightedCrossEntropyLoss(CrossEntropyLoss):
    """MMSegmentation's ``CrossEntropyLoss`` (softmax) whose
    ``class_weight`` works on labels with ignored pixels
    (:func:`class_weighted_cross_entropy`); the same arguments and loss
    name (``loss_ce``). Use it wherever a config sets ``class_weight``::

        loss_decode=dict(type='ClassWeightedCrossEntropyLoss',
                         class_weight=[...], loss_weight=1.0)

    ``python tools/class_weights.py CONFIG`` computes the weights.
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        if self.use_sigmoid or self.use_mask:
            raise ValueError('ClassWeightedCrossEntropyLoss is the softmax '
                             'cross-entropy: use_sigmoid and use_mask must '
                             'be False')
        self.cls_criterion = class_weighted_cross_entropy
