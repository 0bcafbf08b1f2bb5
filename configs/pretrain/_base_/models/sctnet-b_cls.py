# SCTNet-B (c=64, DAPPM 128) as an MMPretrain image classifier for ImageNet
# pretraining. The backbone is the segmentation backbone itself
# (MMSegmentation's registry, hence the 'mmseg.' scope prefix), so the
# trained tensors carry exactly the names the segmentation configs load.
model = dict(
    type='ImageClassifier',
    backbone=dict(
        type='mmseg.SCTNet',
        base_channels=64,
        spp_channels=128,
        drop_path_rate=0.1,
        norm_cfg=dict(type='BN', requires_grad=True),
        init_cfg=None),
    # global average pooling of x_out (stage 2 + upsampled DAPPM, 4c) and of
    # x4 (stage 4, 8c), concatenated: every backbone tensor, DAPPM included,
    # is trained by the classification loss (docs/pretrain.md)
    neck=dict(type='SCTNetClsNeck', in_indices=(0, 3)),
    # 12c -> 1024 (BN, ReLU) -> classes: room for the thin pooled features
    # before the 1000-way classifier; discarded after pretraining
    head=dict(
        type='StackedLinearClsHead',
        num_classes=1000,
        in_channels=12 * 64,
        mid_channels=[1024],
        norm_cfg=dict(type='BN1d'),
        act_cfg=dict(type='ReLU'),
        loss=dict(
            type='LabelSmoothLoss', label_smooth_val=0.1, mode='original'),
        init_cfg=dict(type='TruncNormal', layer='Linear', std=0.02, bias=0.)),
    train_cfg=dict(augments=[
        dict(type='Mixup', alpha=0.8),
        dict(type='CutMix', alpha=1.0)
    ]),
)
