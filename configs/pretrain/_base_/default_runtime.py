# Runtime of the pretraining configs: MMPretrain's registries and runtime,
# the plugin (SCTNet backbone, classification neck), EMA of the weights.
_base_ = ['mmpretrain::_base_/default_runtime.py']
custom_imports = dict(
    imports=['mmseg_sctnet', 'mmseg_sctnet.pretrain.cls_neck'],
    allow_failed_imports=False)
# a checkpoint every epoch, written crash-safe (the segmentation configs'
# hook, named with its registry scope); the last 3 and the best top-1 kept
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=100),
    checkpoint=dict(
        type='mmseg.AtomicCheckpointHook',
        interval=1,
        max_keep_ckpts=3,
        save_best='auto'))
# EMA of the weights and BN statistics (decay 0.9999 per step); validation,
# the saved state_dict and the exported backbone use the EMA weights.
# NonFiniteLossHook: the segmentation runtime's stop on a NaN/inf loss
# (docs/reliability.md). DatasetCheckHook checks segmentation label maps and
# ExactResumeHook restores RNG states in iteration-based loops only, so
# neither applies: reliability_hooks = False keeps this list as written.
custom_hooks = [
    dict(
        type='EMAHook',
        momentum=1e-4,
        update_buffers=True,
        priority='ABOVE_NORMAL'),
    dict(type='mmseg.NonFiniteLossHook', priority='ABOVE_NORMAL'),
]
reliability_hooks = False
