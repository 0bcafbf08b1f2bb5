# Cityscapes, Seg75: training as Seg50, test at 1536x768.
_base_ = ['./cityscapes.py']
test_scale = (1536, 768)  # (w, h)
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=test_scale, keep_ratio=True),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs')
]
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
