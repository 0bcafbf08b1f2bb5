"""The checks of inference/test/train (mmseg_sctnet.apis.checks, .config):
checkpoint reading, output paths, --cfg-options keys, config mistakes
found while building.
All in process and fast; the tools' command lines are driven by
tests/fault_injection/."""
import os

import pytest
import torch
from mmengine.config import Config

from mmseg_sctnet.io.files import (check_config_dump,
                                   check_output_folder,
                                   check_planned_outputs)
from mmseg_sctnet.io.errors import ConfigError
from mmseg_sctnet.io.config import (check_cfg_options,
                                    explain_build_errors,
                                    load_config)
from mmseg_sctnet.io.errors import PathError
from mmseg_sctnet.io.errors import UserError

CONFIG = 'configs/custom/sctnet-s_custom.py'


def test_output_paths(tmp_path):
    good = tmp_path / 'good.pth'
    torch.save(dict(state_dict=dict(w=torch.zeros(3))), str(good))
    img = tmp_path / 'in' / 'x.png'
    img.parent.mkdir()
    img.write_bytes(b'x')
    ok = tmp_path / 'new' / 'deeper'
    check_output_folder(str(ok), '--out', inputs=[str(img)])
    assert not ok.exists()  # checking creates nothing
    for path, inputs, msg in [
        (img, [img], 'is a file'),
        (img.parent, [img.parent], 'is the input'),
        (tmp_path / 'in' / 'o', [img.parent], 'inside the input folder'),
        (tmp_path / 'in' / 'x.png' / 'o', [], 'is a file'),
    ]:
        with pytest.raises(PathError, match=msg):
            check_output_folder(str(path), '--out', [str(i) for i in inputs])
    # a planned output that is an input: refused with or without --force,
    # also through a symbolic link
    link = tmp_path / 'link.png'
    os.symlink(img, link)
    for force in (False, True):
        with pytest.raises(PathError, match='would overwrite'):
            check_planned_outputs([str(link)], [str(img)], force)
    with pytest.raises(PathError, match='already exists.*--force'):
        check_planned_outputs([str(good)], [str(img)], False)
    check_planned_outputs([str(good)], [str(img)], True)
    # MMEngine writes WORK_DIR/<config name>: not when that is the config
    run = tmp_path / 'run'
    run.mkdir()
    (run / 'cfg.py').write_text('x = 1\n')
    with pytest.raises(PathError, match='lies in the work dir'):
        check_config_dump(str(run), str(run / 'cfg.py'))
    check_config_dump(str(tmp_path / 'other'), str(run / 'cfg.py'))


@pytest.fixture(scope='module')
def cfg():
    return Config.fromfile(CONFIG)


def test_cfg_options_keys(cfg):
    ok = {
        'train_cfg.max_iters': 4,  # exists
        'test_pipeline.1.scale': (64, 32),  # list index
        'randomness.seed': 1,  # read by MMEngine's Runner when present
        'model.decode_head.num_classes': 8,
        '+model.test_cfg.crop_size': (64, 64),  # new key, asked for
        # not in the config, but an argument its component takes
        'model.decode_head.dropout_ratio': 0.2,
        'randomness.diff_rank_seed': True,  # Runner.set_randomness's
    }
    out = check_cfg_options(cfg, ok, 'x.py')
    assert 'model.test_cfg.crop_size' in out and len(out) == len(ok)
    cases = [
        ('trian_cfg.max_iters', "key 'trian_cfg' is not in x.py; did you "
         "mean 'train_cfg'?"),
        ('model.decode_head.num_clases',
         "did you mean 'model.decode_head.num_classes'"),
        ('test_pipeline.9.scale', 'list of 4 entries'),
        ('train_cfg.max_iters.x', 'has no entry'),
        ('model.test_cfg.crop_size', "'\\+model.test_cfg.crop_size=...'"),
        ('randomness.sed', "did you mean 'randomness.seed'"),
        ('model.backbone.base_channel',
         "did you mean 'model.backbone.base_channels'"),
    ]
    for key, msg in cases:
        with pytest.raises(ConfigError, match=msg):
            check_cfg_options(cfg, {key: 1}, 'x.py')


def test_build_errors_become_one_line(cfg):
    from mmseg.registry import MODELS
    model = cfg.model.copy()
    model.update(train_cfg=None)
    model.backbone = dict(model.backbone, init_cfg=None, base_channel=16)
    with pytest.raises(ConfigError) as e:
        with explain_build_errors(Config(dict(model=model)), 'x.py'):
            MODELS.build(model)
    msg = str(e.value)
    assert "'model.backbone.base_channel'" in msg and 'SCTNet' in msg
    assert "did you mean 'base_channels'" in msg and '\n' not in msg
    model.backbone.pop('base_channel')
    model.decode_head = dict(model.decode_head, type='SCTHaed')
    with pytest.raises(ConfigError, match="'SCTHaed'.*did you mean 'SCTHead'"):
        with explain_build_errors(Config(dict(model=model)), 'x.py'):
            MODELS.build(model)
    with pytest.raises(TypeError, match='a bug'):  # not a config mistake
        with explain_build_errors(cfg, 'x.py'):
            raise TypeError('a bug')


def test_load_config_errors(tmp_path):
    bad = tmp_path / 'bad.py'
    bad.write_text('model = dict(\n')
    with pytest.raises(UserError, match='cannot read config file .*bad.py'):
        load_config(str(bad))
    ckpt = tmp_path / 'x.pth'
    ckpt.write_bytes(b'x')
    with pytest.raises(UserError, match='not a config'):
        load_config(str(ckpt))
    with pytest.raises(UserError, match='config file not found'):
        load_config(str(tmp_path / 'nope.py'))
