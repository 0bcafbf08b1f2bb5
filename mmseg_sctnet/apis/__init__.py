"""The bodies of the command-line tools whose work nothing else reuses:
``tools/train.py`` (:mod:`.train`), ``tools/test.py`` (:mod:`.test`),
``tools/inference.py`` (:mod:`.inference`), ``tools/deploy.py``
(:mod:`.deploy_checkpoint`), ``tools/publish_model.py`` (:mod:`.publish`),
``tools/check_dataset.py`` (:mod:`.dataset_check`).

A tool is argparse plus one call into the package. Where the work is
reused by other code it lives in the package that owns it and the tool
calls it there: ``tools/pth_convert.py`` and ``tools/export_backbone.py``
-> :mod:`mmseg_sctnet.pretrain`, ``tools/export_onnx.py`` ->
:mod:`mmseg_sctnet.deploy.onnx_export`, ``tools/get_flops.py`` and
``speed/*.py`` -> :mod:`mmseg_sctnet.benchmark`, ``tools/demo.py`` ->
:mod:`mmseg_sctnet.experiments`, the dataset converters ->
:mod:`mmseg_sctnet.datasets.converters` (CONTRIBUTING.md has the table).
The submodules are imported where used, so a tool loads what it needs.
"""
