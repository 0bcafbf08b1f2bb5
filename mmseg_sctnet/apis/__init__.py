"""What the command-line tools call: one module per tool (``train``,
``test``, ``inference``/``inferencer``, ``demo``, ``convert``,
``publish``, ...) plus the pieces they share (input/output checks in
``files``/``checks``, config handling in ``config``, distributed runs
without CUDA in ``distributed``).

A tool in ``tools/`` is argparse plus one call into this package. The
submodules are imported where used (``from mmseg_sctnet.apis.inference
import run_inference``), so a tool loads only what it needs.
"""
