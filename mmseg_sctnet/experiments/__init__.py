"""Experiments: the demo and the SIAM studies, each a loop over the same
training and evaluation runs the tools make (:mod:`mmseg_sctnet.engine`).

* :mod:`.demo`: ``tools/demo.py`` (``make demo``): generated data, a
  SegFormer teacher, its conversion, SCTNet-S with SIAM, the test;
* :mod:`.ablation`: ``tools/demo.py --ablation``: SIAM vs no SIAM from the
  same start over seeds (:class:`~mmseg_sctnet.engine.SameStartHook`).

See docs/demo.md and docs/siam.md.
"""
