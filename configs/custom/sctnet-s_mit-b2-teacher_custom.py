# SCTNet-S with the paper's teacher size, MiT-B2 (segformer_mit-b2_custom.py).
#
#   python tools/train.py configs/custom/sctnet-s_mit-b2-teacher_custom.py
_base_ = ['./sctnet-s_custom.py']
model = dict(
    siam_head=dict(
        teacher_checkpoint='pretrained/Teacher_SegFormer_B2_custom.pth',
        teacher_backbone=dict(embed_dims=64, num_layers=[3, 4, 6, 3]),
        teacher_head=dict(in_channels=[64, 128, 320, 512])))
