# The official COCO-Stuff-10K schedule: schedule_160k_ade20k.py (weight
# decay 0.01, none on norm layers, poly decay to 0, a checkpoint every 4000
# iterations) with lr 6e-5 and an evaluation every 4000 iterations.
_base_ = ['./schedule_160k_ade20k.py']
optim_wrapper = dict(optimizer=dict(lr=6e-5))
# the official total batch: 4 GPUs x 4 images (--auto-scale-lr)
auto_scale_lr = dict(base_batch_size=16)
train_cfg = dict(val_interval=4000)
