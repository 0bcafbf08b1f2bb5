# ADE20K (150 classes), official SCTNet setting: MMSegmentation's ADE20K
# base (random rescale 0.5-2.0 of 2048x512, 512x512 crops, test with the
# short side 512, reduce_zero_label) with 8 images per GPU (MMSegmentation:
# 4) and the test-time augmentation around the test scale (2048x512).
# Crops smaller than crop_size are padded by the data preprocessor
# (model.data_preprocessor.size = crop_size), after normalisation.
_base_ = ['mmseg::_base_/datasets/ade20k.py']
# tools/test.py --tta: MMSegmentation's ratios (img_ratios) and flips around
# this config's test Resize, built by mmseg_sctnet.apis.test.tta_pipeline
# (MMSegmentation's base scales the original image, not the test size)
tta_pipeline = None
train_dataloader = dict(batch_size=8)
