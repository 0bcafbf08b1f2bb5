"""Deployment of the trained student: deploy form, ONNX, int8, low
precision, inference.

* :mod:`.model`: config + checkpoint -> inference model (eager or deploy
  checkpoints), deploy checkpoints, ``SegmentorWithResize`` (``image ->
  full-size logits``, what ``speed/`` times and ONNX export writes). The
  deploy form itself (``switch_to_deploy``: training-only heads removed,
  BatchNorms folded exactly, leaner attention, channels-last) is model
  code: :mod:`mmseg_sctnet.models.deploy_form`.
* :mod:`.onnx_export` (``tools/export_onnx.py``), :mod:`.quantize` (int8
  calibrated on the train split), :mod:`.onnx_runtime` (sessions, a
  file's interface, fitting images to a static size),
  :mod:`.ort_segmentor` (an ONNX file as an MMSegmentation segmentor for
  ``tools/test.py``).
* :mod:`.dtype`: bf16/fp16 where the device runs them natively.
* :mod:`.inferencer`: ``MMSegInferencer`` subclasses for PyTorch, ONNX and
  low precision (``tools/inference.py``).

See docs/deploy.md.
"""
from ..models.deploy_form import (deploy_modules, deploy_options,
                                  is_deployed, switch_to_deploy)
from .model import (DEPLOY_META_KEY, SegmentorWithResize,
                    build_inference_model, compile_for_inference,
                    is_deploy_checkpoint, load_inference_model,
                    load_student_weights, load_weights, require_sctnet,
                    save_deploy_checkpoint)

__all__ = [
    'switch_to_deploy', 'is_deployed', 'deploy_options', 'deploy_modules',
    'DEPLOY_META_KEY', 'load_inference_model', 'build_inference_model',
    'load_student_weights', 'load_weights', 'require_sctnet',
    'save_deploy_checkpoint', 'is_deploy_checkpoint', 'SegmentorWithResize',
    'compile_for_inference'
]
