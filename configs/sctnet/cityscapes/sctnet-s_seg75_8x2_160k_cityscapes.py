_base_ = [
    '../../_base_/models/sctnet-s.py',
    '../../_base_/datasets/cityscapes_seg75.py',
    '../../_base_/schedules/schedule_160k.py',
    '../../_base_/default_runtime.py',
]
model = dict(
    data_preprocessor=dict(size=_base_.crop_size),  # noqa: F821
    decode_head=dict(num_classes=19),
    siam_head=dict(
        teacher_checkpoint='pretrained/Teacher_SegFormer_B2_city.pth'))
randomness = dict(seed=1355374048)  # the official config's seed
