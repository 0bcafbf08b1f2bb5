# Step 2 of the custom-data workflow: SCTNet-S trained with SIAM, guided by
# the frozen MiT-B0 teacher of segformer_mit-b0_custom.py.
#
#   python tools/train.py configs/custom/sctnet-s_custom.py
#   python tools/test.py configs/custom/sctnet-s_custom.py \
#       work_dirs/sctnet-s_custom/iter_160000.pth
#   python tools/inference.py my_images/ configs/custom/sctnet-s_custom.py \
#       work_dirs/sctnet-s_custom/iter_160000.pth --out outputs/my_images
#
# The dataset (paths, classes, palette, sizes) is in custom_dataset.py; the
# number of classes follows its `classes`.
_base_ = [
    '../_base_/models/sctnet-s.py', './custom_dataset.py',
    '../_base_/default_runtime.py', '../_base_/schedules/schedule_160k.py'
]
model = dict(
    # pad training crops to crop_size after normalisation (image 0, label 255)
    data_preprocessor=dict(size=_base_.crop_size),  # noqa: F821
    # ImageNet initialisation of the student (official SCT-S_Pretrain; set
    # init_cfg=None to train from scratch)
    backbone=dict(
        init_cfg=dict(
            type='Pretrained', checkpoint='pretrained/SCT-S_Pretrain.pth')),
    decode_head=dict(num_classes=len(_base_.classes)),  # noqa: F821
    siam_head=dict(
        # written by tools/pth_convert.py from the teacher's checkpoint;
        # or: --cfg-options model.siam_head.teacher_checkpoint=PATH
        teacher_checkpoint='pretrained/Teacher_SegFormer_B0_custom.pth',
        # the teacher's architecture: the same as segformer_mit-b0_custom.py
        teacher_backbone=dict(embed_dims=32, num_layers=[2, 2, 2, 2]),
        teacher_head=dict(in_channels=[32, 64, 160, 256])))

# The official ADE20K settings (a generic choice for a new dataset): AdamW
# lr 5e-4, weight decay 0.01 (none on norms), heads lr x10, 1500 warm-up
# iterations, poly decay over 160k iterations; fewer do for small datasets.
max_iters = 160000
optim_wrapper = dict(
    optimizer=dict(lr=5e-4, weight_decay=0.01),
    paramwise_cfg=dict(
        custom_keys=dict(
            head=dict(lr_mult=10.0), norm=dict(decay_mult=0.0))))
param_scheduler = [
    dict(
        type='LinearLR', start_factor=1e-6, by_epoch=False, begin=0,
        end=1500),
    dict(
        type='PolyLR',
        eta_min=0.0,
        power=1.0,
        begin=0,
        end=max_iters,
        by_epoch=False),
]
# that lr is tuned for the official ADE20K total batch, 4 GPUs x 8 images;
# tools/train.py --auto-scale-lr scales it to yours (1 GPU x 8: 1.25e-4)
auto_scale_lr = dict(base_batch_size=32)
train_cfg = dict(max_iters=max_iters, val_interval=8000)
default_hooks = dict(checkpoint=dict(interval=8000))
