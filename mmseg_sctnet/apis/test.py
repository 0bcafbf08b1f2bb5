"""The body of ``tools/test.py``: evaluate a checkpoint or an ONNX file
on a config's test split, write the metrics, label maps and pictures asked
for; or, ``format_only``, write the Cityscapes test-server files
(:func:`mmseg_sctnet.engine.evaluation_run.use_cityscapes_server_format`).

The pieces (config and path checks, the model to test, TTA, the runner)
are :mod:`mmseg_sctnet.engine.evaluation_run`, which the demo reuses.
"""
from typing import Callable, Optional

from mmengine.logging import print_log

from ..engine.distributed import finish_distributed, init_cpu_distributed
from ..engine.evaluation_run import (CITYSCAPES_TEST_IMAGES, SUPPORTED_EVAL,
                                     build_test_config, run_test)
from ..io.files import write_json

__all__ = ['test', 'SUPPORTED_EVAL']


def test(config: str, checkpoint: str, launcher: str = 'none',
         on_runner: Optional[Callable] = None, **options) -> dict:
    """Everything ``tools/test.py`` does; returns the metrics, per-class
    values, config and checkpoint (also written to ``metrics_json``).

    ``options`` are those of
    :func:`~mmseg_sctnet.engine.evaluation_run.build_test_config`
    (``work_dir``, ``out``, ``show_dir``, ``metrics_json``,
    ``eval_metrics``, ``tta``, ``cfg_options``, ``format_only``);
    ``on_runner`` is called with the runner before it tests."""
    cfg = build_test_config(config, checkpoint, launcher=launcher, **options)
    out, show_dir = options.get('out'), options.get('show_dir')
    metrics_json = options.get('metrics_json')
    format_only = options.get('format_only', False)
    init_cpu_distributed(cfg, launcher)
    result = run_test(cfg, on_runner)
    finish_distributed()
    if result['rank'] != 0:
        return result
    result.update(config=config, checkpoint=checkpoint)
    if metrics_json:
        write_json(metrics_json, result, overwrite=True,
                   inputs=[config, checkpoint])
        print_log(f'metrics written to {metrics_json}', logger='current')
    if show_dir:
        print_log(f'input | ground truth | prediction PNGs in {show_dir}',
                  logger='current')
    if out and format_only:
        print_log(
            f'Cityscapes test-server files (label ids, one PNG per image of '
            f'{CITYSCAPES_TEST_IMAGES}) in {out}; zip that folder to submit '
            'it', logger='current')
    elif out:
        print_log(f'predicted label maps in {out}', logger='current')
    if 'mIoU' in result['metrics']:
        print(f"mIoU: {result['metrics']['mIoU']:.2f}")
    return result
