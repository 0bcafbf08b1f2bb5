# The paper's teacher for SCTNet-S: SegFormer MiT-B2 (pair it with
# sctnet-s_mit-b2-teacher_custom.py). Everything else as
# segformer_mit-b0_custom.py.
#
#   python tools/train.py configs/custom/segformer_mit-b2_custom.py
#   python tools/pth_convert.py \
#       work_dirs/segformer_mit-b2_custom/iter_160000.pth \
#       pretrained/Teacher_SegFormer_B2_custom.pth
_base_ = ['./segformer_mit-b0_custom.py']
checkpoint = 'https://download.openmmlab.com/mmsegmentation/v0.5/pretrain/segformer/mit_b2_20220624-66e8bf70.pth'  # noqa
model = dict(
    backbone=dict(
        embed_dims=64,
        num_layers=[3, 4, 6, 3],
        init_cfg=dict(type='Pretrained', checkpoint=checkpoint)),
    decode_head=dict(in_channels=[64, 128, 320, 512]))
