# Cityscapes, Seg75: training as Seg50, test at 1536x768.
_base_ = ['./cityscapes.py']
test_scale = (1536, 768)  # (w, h)
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=test_scale, keep_ratio=True),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs')
]
# --tta: as in the Seg50 base, around this test pipeline
img_ratios = [0.5, 0.75, 1.0, 1.25, 1.5, 1.75]
tta_pipeline = [
    test_pipeline[0],
    dict(type='ScaleFlipTTA', resize=test_pipeline[1], img_ratios=img_ratios,
         then=test_pipeline[2:])
]
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
