from .alignment_loss import AlignmentLoss, channel_wise_divergence

__all__ = ['AlignmentLoss', 'channel_wise_divergence']
