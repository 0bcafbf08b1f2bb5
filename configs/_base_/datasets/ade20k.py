# ADE20K (150 classes), official SCTNet setting: MMSegmentation's ADE20K
# base (random rescale 0.5-2.0 of 2048x512, 512x512 crops, test with the
# short side 512, reduce_zero_label) with 8 images per GPU (MMSegmentation:
# 4) and the test-time augmentation around the test scale (2048x512).
# Crops smaller than crop_size are padded by the data preprocessor
# (model.data_preprocessor.size = crop_size), after normalisation.
_base_ = ['mmseg::_base_/datasets/ade20k.py']
test_scale = (2048, 512)  # (w, h): the Resize of the base's test pipeline
# --tta (tools/test.py and MMSegmentation's own tools/test.py): the test
# Resize at img_ratios of its scale, both horizontal flips, then the rest of
# the base's test pipeline (MMSegmentation's base scales the original image
# instead). A leaf that changes test_pipeline restates this, or sets
# tta_pipeline = None and tools/test.py builds it the same way.
img_ratios = [0.5, 0.75, 1.0, 1.25, 1.5, 1.75]
tta_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='ScaleFlipTTA',
         resize=dict(type='Resize', scale=test_scale, keep_ratio=True),
         img_ratios=img_ratios,
         then=[dict(type='LoadAnnotations', reduce_zero_label=True),
               dict(type='PackSegInputs')])
]
train_dataloader = dict(batch_size=8)
