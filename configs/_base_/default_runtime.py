# Runtime shared by every SCTNet config (MMSegmentation 1.x / MMEngine).
default_scope = 'mmseg'
# stock mmseg entry points (mim, mmseg's tools) load the plugin through this
custom_imports = dict(imports=['mmseg_sctnet'], allow_failed_imports=False)
env_cfg = dict(
    cudnn_benchmark=True,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='nccl'),
)
vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(
    type='SegLocalVisualizer', vis_backends=vis_backends, name='visualizer')
log_processor = dict(by_epoch=False)
log_level = 'INFO'
load_from = None
resume = False
tta_model = dict(type='SegTTAModel')
# Reliability (docs/reliability.md): check a sample of the data before the
# first iteration (dataset_check = dict(allow_warnings=True, num_samples=N,
# enable=False) adjusts it), stop on a NaN/inf loss before a broken
# checkpoint is written, store RNG states so --resume is exact, and on
# SIGTERM/SIGUSR1 save a checkpoint after the current iteration and exit
# with status 75 (pre-emption; PreemptionHook runs last).
# tools/train.py adds any of these back when a config's own custom_hooks
# list leaves them out (reliability_hooks = False keeps the list as written).
reliability_hooks = True
custom_hooks = [
    dict(type='DatasetCheckHook', priority='VERY_HIGH'),
    dict(type='NonFiniteLossHook', priority='ABOVE_NORMAL'),
    dict(type='ExactResumeHook', priority='VERY_LOW'),
    dict(type='PreemptionHook', priority='LOWEST'),
]
