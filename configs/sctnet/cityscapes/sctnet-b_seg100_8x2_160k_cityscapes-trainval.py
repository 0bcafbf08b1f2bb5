# SCTNet-B Seg100 trained on Cityscapes train + val (2975 + 500 images):
# the model to submit to the Cityscapes test server. Everything else is the
# official leaf's (model, schedule, seed, test at 2048x1024); the training
# set is a ConcatDataset of both splits with the same pipeline. The val
# evaluation during training is kept, but it scores images the model
# trained on: the number that counts is the server's.
#
#   CONFIG=configs/sctnet/cityscapes/sctnet-b_seg100_8x2_160k_cityscapes-trainval.py
#   bash tools/dist_train.sh $CONFIG 2
#   python tools/test.py $CONFIG \
#       work_dirs/sctnet-b_seg100_8x2_160k_cityscapes-trainval/iter_160000.pth \
#       --format-only --out work_dirs/cityscapes_test_results
#
# (docs/dataset_prepare.md, "Cityscapes test server")
#
# Another leaf on train + val: the same few lines with its own _base_.
_base_ = ['./sctnet-b_seg100_8x2_160k_cityscapes.py']
train_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type='ConcatDataset',
        datasets=[
            dict(
                type=_base_.dataset_type,  # noqa: F821
                data_root=_base_.data_root,  # noqa: F821
                data_prefix=dict(
                    img_path='leftImg8bit/train',
                    seg_map_path='gtFine/train'),
                pipeline=_base_.train_pipeline),  # noqa: F821
            dict(
                type=_base_.dataset_type,  # noqa: F821
                data_root=_base_.data_root,  # noqa: F821
                data_prefix=dict(
                    img_path='leftImg8bit/val', seg_map_path='gtFine/val'),
                pipeline=_base_.train_pipeline),  # noqa: F821
        ]))
