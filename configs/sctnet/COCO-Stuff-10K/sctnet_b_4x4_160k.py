_base_ = [
    '../../_base_/models/sctnet-b.py',
    '../../_base_/datasets/coco-stuff10k.py',
    '../../_base_/schedules/schedule_160k_coco-stuff10k.py',
    '../../_base_/default_runtime.py',
]
model = dict(
    data_preprocessor=dict(size=_base_.crop_size),  # noqa: F821
    decode_head=dict(num_classes=171),
    siam_head=dict(
        teacher_checkpoint='pretrained/Teacher_SegFormer_B3_COCO.pth'))
randomness = dict(seed=1744907615)  # the official config's seed
