"""One clear message (the file/value and the fix) for the usual mistakes:
num_classes differing from the checkpoint's classifier, config/checkpoint
paths that do not exist, a teacher of another size, a non-finite loss."""
import hashlib
import os
import os.path as osp

import pytest
import torch

from helpers.models import CITY_CONFIG, build_cfg_model
from helpers.tools import load_tool, run_tool
from helpers.reliability import tiny_train_config, toy_runner

from mmseg_sctnet.io.errors import (CheckpointMismatchError,
                                    CheckpointNotFoundError,
                                    NonFiniteLossError,
                                    UserError)
from mmseg_sctnet.io.checkpoint import safe_torch_load
from mmseg_sctnet.datasets import make_cityscapes


@pytest.fixture(scope='module')
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp('clear_errors')
    return str(root), make_cityscapes(
        str(root / 'data'), n_train=4, n_val=2, size=(64, 128))


@pytest.fixture(scope='module')
def ckpt_8_classes(data):
    """An SCTNet-S checkpoint whose classifier has 8 classes."""
    root, _ = data
    model = build_cfg_model(
        CITY_CONFIG['S'], train=False, **{'model.decode_head.num_classes': 8})
    path = osp.join(root, 'sctnet_s_8cls.pth')
    torch.save(dict(meta=dict(), state_dict=model.state_dict()), path)
    return path


# ----------------------------------------------------------- num_classes
def test_num_classes_mismatch_via_init_model(ckpt_8_classes):
    from mmseg.apis import init_model
    with pytest.raises(ValueError) as e:
        init_model(CITY_CONFIG['S'], ckpt_8_classes, device='cpu')
    msg = str(e.value)
    assert 'predicts 8 classes but the config builds 19' in msg
    assert 'num_classes=8' in msg and 'load_from=None' in msg


def test_num_classes_mismatch_via_test_tool_prints_checksum(
        data, ckpt_8_classes):
    root, city = data
    cfg = tiny_train_config(
        osp.join(root, 'test_cfg.py'), city, with_test=True)
    res = run_tool([
        'tools/test.py', cfg, ckpt_8_classes, '--work-dir',
        osp.join(root, 'test_wd')
    ])
    out = res.stdout + res.stderr
    assert res.returncode != 0
    assert 'predicts 8 classes but the config builds 19' in out
    sha = hashlib.sha256(open(ckpt_8_classes, 'rb').read()).hexdigest()
    assert f'sha256 {sha}' in out  # the checksum of what it loads


# --------------------------------------------------------- missing paths
def test_missing_config_and_checkpoint_via_init_model(tmp_path):
    from mmseg.apis import init_model
    with pytest.raises(FileNotFoundError, match='no_such_config.py'):
        init_model(str(tmp_path / 'no_such_config.py'))
    with pytest.raises(CheckpointNotFoundError) as e:
        init_model(
            CITY_CONFIG['S'], str(tmp_path / 'missing.pth'), device='cpu')
    msg = str(e.value)
    assert 'Checkpoint file not found' in msg and 'missing.pth' in msg
    assert 'current directory' in msg and isinstance(e.value,
                                                     FileNotFoundError)


def test_missing_load_from_in_a_runner(tmp_path):
    runner = toy_runner(tmp_path / 'wd', load_from=str(tmp_path / 'gone.pth'))
    with pytest.raises(CheckpointNotFoundError, match='gone.pth'):
        runner.train()


def test_missing_paths_in_train_and_test_tools(tmp_path, capsys):
    train, test = load_tool('train'), load_tool('test')
    missing_cfg = str(tmp_path / 'missing_cfg.py')
    missing_ckpt = str(tmp_path / 'missing.pth')
    for tool, argv, what in (
        (train, [missing_cfg], 'config file not found'),
        (train, [CITY_CONFIG['S'], '--resume',
                 missing_ckpt], 'checkpoint to resume from not found'),
        (test, [missing_cfg, missing_ckpt], 'not found'),
        (test, [CITY_CONFIG['S'], missing_ckpt], 'checkpoint'),
    ):
        capsys.readouterr()
        with pytest.raises(SystemExit) as e:
            tool.main(argv)
        assert e.value.code == 1
        err = capsys.readouterr().err
        lines = [ln for ln in err.splitlines() if ln.startswith('error: ')]
        assert len(lines) == 1 and 'Traceback' not in err, err
        msg = lines[0]
        assert what in msg.lower(), msg
        assert ('missing_cfg.py' in msg) or ('missing.pth' in msg), msg


def test_resume_pointer_to_a_deleted_checkpoint_falls_back(tmp_path):
    from mmengine.config import Config
    from mmseg_sctnet.engine import (find_resume_checkpoint,
                                     resolve_auto_resume)
    wd = str(tmp_path)
    assert find_resume_checkpoint(wd) is None  # nothing there
    for it in (2, 10, 4):
        torch.save({}, str(tmp_path / f'iter_{it}.pth'))
    assert find_resume_checkpoint(wd) == str(tmp_path / 'iter_10.pth')
    pointer = tmp_path / 'last_checkpoint'
    for text in ('', '\n', str(tmp_path / 'iter_12.pth')):  # empty/dangling
        pointer.write_text(text)
        assert find_resume_checkpoint(wd) == str(tmp_path / 'iter_10.pth')
    pointer.write_text(str(tmp_path / 'iter_2.pth'))
    assert find_resume_checkpoint(wd) == str(tmp_path / 'iter_2.pth')
    # what tools/train.py --resume does before building the runner
    cfg = Config(dict(resume=True, load_from=None, work_dir=wd))
    assert resolve_auto_resume(cfg) == str(tmp_path / 'iter_2.pth')
    assert cfg.load_from == str(tmp_path / 'iter_2.pth') and cfg.resume
    empty = Config(dict(resume=True, load_from=None, work_dir=wd + '/new'))
    assert resolve_auto_resume(empty) is None
    assert empty.resume is False and empty.load_from is None


# -------------------------------------------------------------- teacher
def _guidance_head(embed=32, depths=(1, 1, 1, 1), **kw):
    from mmseg.registry import MODELS
    widths = [embed * h for h in (1, 2, 5, 8)]
    return MODELS.build(
        dict(
            type='VitGuidanceHead',
            base_channels=32,
            teacher_backbone=dict(
                type='MixVisionTransformer',
                embed_dims=embed,
                num_layers=list(depths),
                num_heads=[1, 2, 5, 8]),
            teacher_head=dict(
                type='SegformerHead',
                in_channels=widths,
                in_index=[0, 1, 2, 3],
                channels=32,
                num_classes=4),
            **kw))


def _teacher_file(head, path):
    state = {
        k: v
        for k, v in head.state_dict().items() if k.startswith('teacher_')
    }
    torch.save(state, path)
    return path


def test_teacher_channels_mismatch():
    with pytest.raises(ValueError) as e:
        _guidance_head(
            teacher_channels=dict(stage3=320, stage4=512, decoder=1024))
    msg = str(e.value)
    assert "'stage3': 160" in msg and 'teacher_channels' in msg


def test_teacher_of_other_width_or_depth(tmp_path):
    head = _guidance_head(embed=32, depths=(1, 1, 1, 1))
    wide = _teacher_file(_guidance_head(embed=64), str(tmp_path / 'w.pth'))
    with pytest.raises(CheckpointMismatchError) as e:
        head.load_teacher(wide)
    msg = str(e.value)
    assert 'stage widths [64, 128, 320, 512]' in msg  # the file
    assert 'stage widths [32, 64, 160, 256]' in msg  # the config
    assert 'w.pth' in msg and 'pth_convert.py' in msg
    deep = _teacher_file(
        _guidance_head(embed=32, depths=(1, 2, 1, 1)), str(tmp_path / 'd.pth'))
    with pytest.raises(CheckpointMismatchError) as e:
        head.load_teacher(deep)
    msg = str(e.value)
    assert 'depths [1, 2, 1, 1]' in msg and 'depths [1, 1, 1, 1]' in msg
    ok = _teacher_file(_guidance_head(), str(tmp_path / 'ok.pth'))
    head.load_teacher(ok)  # the right size loads


def test_teacher_description_names_mit_sizes():
    from mmseg_sctnet.models.decode_heads.vit_guidance_head import (describe_mit as _describe_mit)
    for depths, name in (((3, 4, 6, 3), 'MiT-B2'), ((3, 4, 18, 3), 'MiT-B3')):
        state = {}
        for i, d in enumerate(depths):
            w = 64 * (1, 2, 5, 8)[i]
            state[f'teacher_backbone.layers.{i}.0.projection.weight'] = \
                torch.empty(w, 1, 1, 1)
            for j in range(d):
                state[f'teacher_backbone.layers.{i}.1.{j}.ffn.w'] = \
                    torch.empty(1)
        assert _describe_mit(state).startswith(name)


# ---------------------------------------------------------- non-finite
def test_non_finite_loss_stops_training_keeps_last_good_checkpoint(data):
    """lr x 1e30 from the 3rd iteration: the loss of iteration 4 is NaN.
    tools/train.py stops there, names the iteration and terms, and leaves
    iter_2.pth as the last checkpoint (no iter_4.pth with NaN weights)."""
    root, city = data
    cfg = tiny_train_config(
        osp.join(root, 'nan.py'),
        city,
        max_iters=8,
        ckpt_interval=2,
        extra="param_scheduler = [dict(type='MultiStepLR', milestones=[2], "
        'gamma=1e30, by_epoch=False)]')
    work = osp.join(root, 'nan_wd')
    res = run_tool(['tools/train.py', cfg, '--work-dir', work])
    out = res.stdout + res.stderr
    assert res.returncode != 0
    assert 'Training stopped at iteration 4: loss term(s) loss=nan' in out
    assert 'decode.loss_ce=nan' in out
    assert f'The last good checkpoint is {work}/iter_2.pth' in out
    assert sorted(f for f in os.listdir(work)
                  if f.endswith('.pth')) == ['iter_2.pth']
    with open(osp.join(work, 'last_checkpoint')) as f:
        assert f.read().strip() == osp.join(work, 'iter_2.pth')
    state = safe_torch_load(osp.join(work, 'iter_2.pth'))['state_dict']
    assert all(
        torch.isfinite(v).all() for v in state.values()
        if v.is_floating_point())


def test_non_finite_weights_are_never_saved_and_old_checkpoint_kept(tmp_path):
    """Weights turn NaN while the loss is still finite: the save of that
    iteration is refused, and with max_keep_ckpts=1 the previous checkpoint
    (which MMEngine deletes before saving) is still there."""
    from mmengine.hooks import Hook
    from mmseg_sctnet.engine import NonFiniteLossHook

    class Poison(Hook):
        priority = 'NORMAL'

        def after_train_iter(self,
                             runner,
                             batch_idx,
                             data_batch=None,
                             outputs=None):
            if runner.iter + 1 == 2:
                with torch.no_grad():
                    runner.model.linear.weight.fill_(float('nan'))

    runner = toy_runner(
        tmp_path,
        max_iters=4,
        interval=1,
        max_keep_ckpts=1,
        custom_hooks=[NonFiniteLossHook(), Poison()])
    with pytest.raises(NonFiniteLossError) as e:
        runner.train()
    msg = str(e.value)
    assert 'Training stopped at iteration 2' in msg
    assert "linear.weight" in msg and 'not written' in msg
    assert str(tmp_path / 'iter_1.pth') in msg
    assert sorted(f for f in os.listdir(tmp_path)
                  if f.endswith('.pth')) == ['iter_1.pth']
    assert (tmp_path / 'last_checkpoint').read_text() == str(tmp_path /
                                                             'iter_1.pth')


def test_non_finite_terms_are_named():
    from mmseg_sctnet.engine import NonFiniteLossHook
    bad = NonFiniteLossHook.non_finite_terms(
        dict(
            loss=torch.tensor(float('inf')),
            **{
                'decode.loss_ce': torch.tensor(1.0),
                'siam.loss_sdha_feat': torch.tensor(float('nan'))
            }))
    assert set(bad) == {'loss', 'siam.loss_sdha_feat'}
    assert NonFiniteLossHook.non_finite_terms(
        dict(loss=torch.tensor(2.0))) == {}


def test_user_errors_share_a_base_class():
    for cls in (CheckpointMismatchError, CheckpointNotFoundError,
                NonFiniteLossError):
        assert issubclass(cls, UserError)


def test_config_custom_hooks_keep_the_reliability_hooks(tmp_path):
    """A leaf config with its own custom_hooks list (which replaces the
    base list) still trains with the dataset check, the non-finite-loss stop,
    exact resume and the pre-emption stop; reliability_hooks=False keeps the
    list as written."""
    from mmseg_sctnet.engine.training_run import build_train_config
    leaf = tmp_path / 'leaf.py'
    leaf.write_text(
        f"_base_ = [{osp.abspath(CITY_CONFIG['S'])!r}]\n"
        "custom_hooks = [dict(type='EmptyCacheHook')]\n")
    cfg = build_train_config(str(leaf), work_dir=str(tmp_path / 'w'))
    types = [h['type'] for h in cfg.custom_hooks]
    assert types == ['EmptyCacheHook', 'DatasetCheckHook',
                     'NonFiniteLossHook', 'ExactResumeHook', 'PreemptionHook']
    # the stock runtime already has them: nothing is added twice
    cfg = build_train_config(CITY_CONFIG['S'])
    assert sorted(h['type'] for h in cfg.custom_hooks) == [
        'DatasetCheckHook', 'ExactResumeHook', 'NonFiniteLossHook',
        'PreemptionHook']
    cfg = build_train_config(
        str(leaf), cfg_options={'reliability_hooks': False})
    assert [h['type'] for h in cfg.custom_hooks] == ['EmptyCacheHook']
