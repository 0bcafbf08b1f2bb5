"""Deployment of SCTNet: folded inference graph, checkpoints, wrappers.

``switch_to_deploy(model)`` turns a trained segmentor into its inference
graph (training-only heads removed, BatchNorms folded exactly, leaner
attention, channels-last); outputs equal the eager model's up to float
rounding. ``tools/deploy.py`` writes such a model as a deploy checkpoint,
``load_inference_model`` loads eager or deploy checkpoints,
``SegmentorWithResize`` is the ``image -> full-size logits`` module timed
by ``speed/`` and exported by ``tools/export_onnx.py``. See
docs/deploy.md.
"""
from .api import (SegmentorWithResize, build_inference_model,
                  is_deploy_checkpoint, load_inference_model,
                  load_student_weights, read_checkpoint,
                  save_deploy_checkpoint)
from .convert import (deploy_modules, deploy_options, is_deployed,
                      switch_to_deploy)
# the folding primitives and the deploy forms live next to the blocks
from ..models.layers import (DeployConvAttention, PreNormConv2d,
                             bn_scale_shift, dual_norm_any_format,
                             fuse_conv_bn)

__all__ = [
    'switch_to_deploy', 'is_deployed', 'deploy_options',
    'load_inference_model', 'build_inference_model', 'load_student_weights',
    'save_deploy_checkpoint', 'is_deploy_checkpoint', 'read_checkpoint',
    'SegmentorWithResize', 'PreNormConv2d', 'bn_scale_shift', 'fuse_conv_bn',
    'DeployConvAttention', 'dual_norm_any_format', 'deploy_modules'
]
