# SCTNet-B (c=64, DAPPM 128) with SIAM and the paper's MiT-B3 teacher
# (segformer_mit-b3_custom.py); data and schedule as sctnet-s_custom.py.
#
#   python tools/train.py configs/custom/sctnet-b_custom.py
_base_ = ['./sctnet-s_custom.py']
model = dict(
    backbone=dict(
        base_channels=64,
        spp_channels=128,
        init_cfg=dict(
            type='Pretrained', checkpoint='pretrained/SCT-B_Pretrain.pth')),
    decode_head=dict(in_channels=256, channels=256),
    auxiliary_head=dict(in_channels=128, channels=128),
    siam_head=dict(
        base_channels=64,
        teacher_checkpoint='pretrained/Teacher_SegFormer_B3_custom.pth',
        teacher_backbone=dict(embed_dims=64, num_layers=[3, 4, 18, 3]),
        teacher_head=dict(in_channels=[64, 128, 320, 512])))
