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


CODE_MMENGINE_UNTOUCHED = """
import builtins
import mmengine.fileio.backends as backends
import mmengine.fileio.io as fileio
import mmengine.hooks.checkpoint_hook as hook_mod
import mmengine.runner.checkpoint as ckpt_mod
import mmengine.runner.runner as runner_mod
from mmengine.hooks import CheckpointHook

def snapshot():
    return dict(
        local=backends.backends['local'],
        prefix=backends.prefix_to_backends[''],
        hook_open=hook_mod.__dict__.get('open', builtins.open),
        hook_methods=dict(vars(CheckpointHook)),
        hook_cls=hook_mod.CheckpointHook,
        find_runner=runner_mod.find_latest_checkpoint,
        find_ckpt=ckpt_mod.find_latest_checkpoint,
        load_from_http=ckpt_mod.load_from_http,
        save_checkpoint=ckpt_mod.save_checkpoint,
        runner_save=runner_mod.save_checkpoint,
        backend_instances=dict(fileio.backend_instances))

before = snapshot()
import mmseg_sctnet
from mmengine.config import Config
cfg = Config.fromfile(  # the config's custom_imports run as well
    'configs/sctnet/cityscapes/sctnet-s_seg50_8x2_160k_cityscapes.py')
after = snapshot()
for key in before:
    if key == 'hook_methods':
        assert before[key].keys() == after[key].keys(), key
        for name, obj in before[key].items():
            assert after[key][name] is obj, name
    elif key == 'backend_instances':
        assert before[key] == after[key], key
    else:
        assert after[key] is before[key], key
assert 'open' not in vars(hook_mod)
assert backends.backends['local'] is backends.LocalBackend
# crash-safe saving is a component the config names
assert cfg.default_hooks.checkpoint.type == 'AtomicCheckpointHook'
assert backends.backends['atomic_local'].__module__.startswith('mmseg_sctnet')
# every checkpoint scheme MMEngine knows reads through the safe loader
loaders = ckpt_mod.CheckpointLoader._schemes
for prefix in ('', 'http://', 'https://', 'torchvision://', 'modelzoo://',
               'open-mmlab://', 'openmmlab://', 'mmcls://', 'pavi://',
               r'(\\S+\\:)?s3://', r'(\\S+\\:)?petrel://'):
    assert loaders[prefix].__module__.startswith('mmseg_sctnet'), prefix
assert all(f.__module__.startswith('mmseg_sctnet')
           for f in loaders.values()), loaders
print('ok')
"""


def test_import_leaves_mmengine_objects_as_mmengine_defines_them():
    """No MMEngine class, function or module global is replaced by
    ``import mmseg_sctnet`` (issue 12): the file backends, the checkpoint
    hook and its module's ``open``, ``find_latest_checkpoint`` and
    ``load_from_http`` are MMEngine's own objects afterwards; the safe
    loaders come in through ``CheckpointLoader.register_scheme``."""
    res = _run(CODE_MMENGINE_UNTOUCHED)
    assert res.returncode == 0, res.stderr[-3000:]
    assert res.stdout.strip().endswith('ok')
