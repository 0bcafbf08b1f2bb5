# ADE20K (150 classes), official SCTNet setting: MMSegmentation's ADE20K
# base (random rescale 0.5-2.0 of 2048x512, 512x512 crops, test with the
# short side 512, reduce_zero_label) with 8 images per GPU (MMSegmentation:
# 4) and the test-time augmentation around the test scale (2048x512).
# Crops smaller than crop_size are padded by the data preprocessor
# (model.data_preprocessor.size = crop_size), after normalisation.
_base_ = ['mmseg::_base_/datasets/ade20k.py']
test_scale = (2048, 512)  # (w, h): the Resize of the base's test pipeline
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
            [dict(type='LoadAnnotations', reduce_zero_label=True)],
            [dict(type='PackSegInputs')],
        ])
]
train_dataloader = dict(batch_size=8)
