"""Measurements: speed, accuracy by backend, FLOPs, profiles, pretraining
cost. The ``speed/`` scripts and ``tools/get_flops.py`` call into it.

* :mod:`.harness`: the latency protocol (official ``torch_speed.py``),
  interleaved rounds, the machine every figure is printed with, the
  ``--type`` models;
* :mod:`.speed`: ``speed/torch_speed.py``, ``speed/deploy_speedup.py``;
* :mod:`.backends`: ``speed/compare_backends.py`` (eager, deploy, ONNX
  fp32/int8, bf16, ... in one process);
* :mod:`.accuracy`: ``speed/compare_accuracy.py`` (mIoU by backend);
* :mod:`.peers`: ``speed/compare_peers.py`` (PIDNet, DDRNet, STDC,
  SegFormer under the same protocol);
* :mod:`.onnx_profile`: ``speed/profile_onnx.py``;
* :mod:`.flops`: exact FLOPs and parameters, ``tools/get_flops.py``;
* :mod:`.pretrain_cost`: ``speed/pretrain_cost.py``.
"""
