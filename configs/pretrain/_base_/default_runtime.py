# Runtime of the pretraining configs: MMPretrain's registries and runtime,
# the plugin (SCTNet backbone, classification neck), EMA of the weights.
_base_ = ['mmpretrain::_base_/default_runtime.py']
custom_imports = dict(
    imports=['mmseg_sctnet', 'mmseg_sctnet.pretrain.cls_neck'],
    allow_failed_imports=False)
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=100),
    checkpoint=dict(
        type='CheckpointHook', interval=1, max_keep_ckpts=3, save_best='auto'))
# EMA of the weights (decay 0.9999 per step); validation, the saved
# state_dict and the exported backbone use the EMA weights.
# NonFiniteLossHook / ExactResumeHook: the segmentation runtime's guards
# (docs/reliability.md), named with their registry scope. The segmentation
# DatasetCheckHook checks label maps and does not apply here, hence
# reliability_hooks = False (tools/train.py keeps this list as written).
custom_hooks = [
    dict(type='EMAHook', momentum=1e-4, priority='ABOVE_NORMAL'),
    dict(type='mmseg.NonFiniteLossHook', priority='ABOVE_NORMAL'),
    dict(type='mmseg.ExactResumeHook', priority='VERY_LOW'),
]
reliability_hooks = False
