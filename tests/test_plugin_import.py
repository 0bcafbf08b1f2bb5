"""The plugin works from stock entry points on a machine with mmcv-lite."""
import subprocess
import sys

CODE_IMPORT_FIRST = """
import mmseg_sctnet
from mmseg.utils import register_all_modules
register_all_modules()
import mmseg.models
from mmseg.registry import MODELS
assert MODELS.get('SCTNet') is not None
print('ok')
"""

CODE_CUSTOM_IMPORTS = """
import sys
from mmengine.config import Config
cfg = Config.fromfile(
    'configs/sctnet/cityscapes/sctnet-s_seg50_8x2_160k_cityscapes.py')
assert 'mmseg_sctnet' in sys.modules  # loaded through custom_imports
from mmseg.utils import register_all_modules
register_all_modules()
from mmseg.registry import MODELS
cfg.model.train_cfg = None
model = MODELS.build(cfg.model)
print(type(model).__name__)
"""


def _run(code):
    return subprocess.run([sys.executable, '-c', code],
                          capture_output=True,
                          text=True,
                          timeout=300)


def test_import_then_register_all_modules_in_a_fresh_interpreter():
    res = _run(CODE_IMPORT_FIRST)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip().endswith('ok')


def test_configs_load_the_plugin_through_custom_imports():
    res = _run(CODE_CUSTOM_IMPORTS)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip().endswith('EncoderDecoderDistill')
