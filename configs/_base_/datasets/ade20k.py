# ADE20K (150 classes), official SCTNet setting: MMSegmentation's ADE20K
# base (random rescale 0.5-2.0 of 2048x512, 512x512 crops, test with the
# short side 512, reduce_zero_label) with 8 images per GPU (MMSegmentation:
# 4) and the test-time augmentation around the test scale.
# Crops smaller than crop_size are padded by the data preprocessor
# (model.data_preprocessor.size = crop_size), after normalisation.
_base_ = ['mmseg::_base_/datasets/ade20k.py']
test_scale = (2048, 512)  # (w, h), as in MMSegmentation's test_pipeline
# tools/test.py --tta: MMSegmentation's ratios and flips around this
# config's test scale (MMSegmentation's bases scale the original image,
# which is not the SCTNet test size)
img_ratios = [0.5, 0.75, 1.0, 1.25, 1.5, 1.75]
tta_pipeline = [
    dict(type='LoadImageFromFile', backend_args=None),
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
                dict(type='RandomFlip', prob=0., direction='horizontal'),
                dict(type='RandomFlip', prob=1., direction='horizontal')
            ],
            [dict(type='LoadAnnotations', reduce_zero_label=True)],
            [dict(type='PackSegInputs')],
        ])
]
train_dataloader = dict(batch_size=8)
