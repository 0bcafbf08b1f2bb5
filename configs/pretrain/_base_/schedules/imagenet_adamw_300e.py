# The 300-epoch DeiT/Swin recipe as MMPretrain ships it: AdamW
# (lr 1e-3 for 1024 images per step, betas 0.9/0.999, weight decay 0.05, none
# on norms, biases and 1-D tensors), 20 warm-up epochs, cosine to 1e-5,
# validation every epoch. The learning rate is scaled linearly to the real
# total batch (GPUs x train_dataloader.batch_size) by MMEngine
# (auto_scale_lr), so the same config runs on 1 or N GPUs.
_base_ = ['mmpretrain::_base_/schedules/imagenet_bs1024_adamw_swin.py']
auto_scale_lr = dict(base_batch_size=1024, enable=True)
