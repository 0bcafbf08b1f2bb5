# SCTNet-S (c=32, DAPPM 64) with its training-only MiT-B2 SegFormer teacher.
_base_ = ['./sctnet-b.py']
model = dict(
    backbone=dict(
        base_channels=32,
        spp_channels=64,
        init_cfg=dict(checkpoint='pretrained/SCT-S_Pretrain.pth')),
    decode_head=dict(in_channels=128, channels=128),
    auxiliary_head=dict(in_channels=64, channels=64),
    siam_head=dict(
        base_channels=32,
        teacher_backbone=dict(num_layers=[3, 4, 6, 3])))  # MiT-B2
