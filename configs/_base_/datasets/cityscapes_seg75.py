# Cityscapes, Seg75: training as Seg50, test at 1536x768.
_base_ = ['./cityscapes.py']
test_scale = (1536, 768)  # (w, h)
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=test_scale, keep_ratio=True),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs')
]
# --tta (tools/test.py and MMSegmentation's own tools/test.py): the test
# Resize at MMSegmentation's ratios of test_scale, both horizontal flips
# (MMSegmentation's base scales the original image instead). A leaf that
# changes the test scale restates this, or sets tta_pipeline = None and
# tools/test.py builds it from the test pipeline and img_ratios.
img_ratios = [0.5, 0.75, 1.0, 1.25, 1.5, 1.75]
tta_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(
        type='TestTimeAug',
        transforms=[
            [
                dict(
                    type='Resize',
                    scale=(int(test_scale[0] * r), int(test_scale[1] * r)),
                    keep_ratio=True) for r in img_ratios
            ],
            [
                dict(type='RandomFlip', prob=p, direction='horizontal')
                for p in (0., 1.)
            ],
            [dict(type='LoadAnnotations')],
            [dict(type='PackSegInputs')],
        ])
]
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
