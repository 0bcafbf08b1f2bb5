# SCTNet-B backbone pretraining on ImageNet-1k (docs/pretrain.md): 300
# epochs, 8 GPUs x 128 images (lr 1e-3 AdamW; other GPU counts scale the lr
# linearly), Mixup/CutMix, label smoothing 0.1, EMA.
#   bash tools/dist_train.sh configs/pretrain/sctnet-b_8xb128_in1k.py 8
#   python tools/export_backbone.py \
#       work_dirs/sctnet-b_8xb128_in1k/epoch_300.pth \
#       pretrained/SCT-B_Pretrain.pth
_base_ = [
    './_base_/models/sctnet-b_cls.py', './_base_/datasets/imagenet_bs128.py',
    './_base_/schedules/imagenet_adamw_300e.py', './_base_/default_runtime.py'
]
