from .alignment_loss import AlignmentLoss, channel_wise_divergence
from .class_weighted_ce import (ClassWeightedCrossEntropyLoss,
                                class_weighted_cross_entropy)

__all__ = [
    'AlignmentLoss', 'channel_wise_divergence',
    'ClassWeightedCrossEntropyLoss', 'class_weighted_cross_entropy'
]
