# The demo student (configs/demo/sctnet-s_demo_cityscapes.py) with class
# weights in the cross-entropy of the decode head and the auxiliary head:
# rare or thin classes (pole, person, vegetation here) count more per pixel.
# The weights are median-frequency balancing over the demo's 320 training
# label maps (data/demo_cityscapes, as tools/demo.py generates it), printed
# by
#
#   python tools/class_weights.py configs/demo/sctnet-s_demo_cityscapes.py
#
# (scaled to a mean of 1 over the labelled pixels; --method enet for ENet's
# 1 / ln(1.02 + p)). For your data: run it on your config and paste its
# class_weight here. ClassWeightedCrossEntropyLoss is MMSegmentation's
# CrossEntropyLoss with class weights that work on labels with ignored (255)
# pixels; loss_weight (1.0, 0.4) stays the base's. docs/custom_dataset.md
# says when weights help.
#
#   python tools/train.py configs/custom/sctnet-s_class-weights_demo.py
_base_ = ['../demo/sctnet-s_demo_cityscapes.py']
# road, sidewalk, building, pole, vegetation, sky, person, car
class_weight = [0.6021, 0.4563, 0.5934, 8.2172, 5.0008, 0.5794, 7.4955, 3.5903]
model = dict(
    decode_head=dict(
        loss_decode=dict(
            type='ClassWeightedCrossEntropyLoss', class_weight=class_weight)),
    auxiliary_head=dict(
        loss_decode=dict(
            type='ClassWeightedCrossEntropyLoss', class_weight=class_weight)))
