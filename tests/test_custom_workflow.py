"""The custom-dataset workflow of docs/custom_dataset.md, end to end.

Generated data in the plain folder layout with a class list of its own
(another order than the template's, plus a class that never occurs); the
configs/custom templates copied and edited the way the docs say (only the
settings block of custom_dataset.py); then each step is one call of the real
tool (its ``main``, run from the project folder), as in the docs, with tiny
sizes and iteration counts added:

check the data -> train the SegFormer teacher -> convert it -> train SCTNet
with SIAM -> evaluate -> run inference.
"""
import os
import os.path as osp
import re
import shutil
import warnings

import cv2
import numpy as np
import pytest
import torch
from helpers.models import ROOT
from helpers.tools import load_tool

from mmseg_sctnet.io.checkpoint import safe_torch_load
from mmseg_sctnet.datasets import make_custom

CLASSES = ('sky', 'car', 'background', 'road', 'person', 'building',
           'vegetation', 'sidewalk', 'pole')
PALETTE = [[70, 130, 180], [0, 0, 142], [0, 0, 0], [128, 64, 128],
           [220, 20, 60], [70, 70, 70], [107, 142, 35], [244, 35, 232],
           [153, 153, 153]]
TINY = dict(
    img_scale=(192, 128), crop_size=(64, 96), batch_size=2, num_workers=0)
ITERS = 4
SCHEDULE = [
    f'train_cfg.max_iters={ITERS}', f'train_cfg.val_interval={ITERS}',
    f'default_hooks.checkpoint.interval={ITERS}',
    'default_hooks.logger.interval=1', 'randomness.seed=0'
]


def run(args, cwd, capture):
    """Run a repository tool from ``cwd`` (the user's project folder) in
    this process, as ``python tools/X.py ARGS`` would (its ``main``; a
    fresh interpreter per step would add ~5 s of imports each, and the
    fault-injection suite starts the tools fresh); returns what it printed
    (``capture``: pytest's ``capfd``; the tools' loggers write to the
    process's stdout)."""
    tool = load_tool(args[0][len('tools/'):])
    old = os.getcwd()
    os.chdir(cwd)
    code = 0
    try:
        tool.main(list(args[1:]))
    except SystemExit as e:
        code = e.code
    finally:
        os.chdir(old)
    out, err = capture.readouterr()
    assert code in (0, None), \
        f'{" ".join(args)} failed ({code}):\n{(out + err)[-4000:]}'
    return out + err


def edit_settings(path, **values):
    """Set variables in the settings block of custom_dataset.py, as a user
    edits it (new assignments at the end of the block)."""
    text = open(path).read()
    marker = '# ---- end of the settings to edit'
    assert text.count(marker) == 1
    lines = ''.join(f'{k} = {v!r}\n' for k, v in values.items())
    open(path, 'w').write(text.replace(marker, lines + marker))


@pytest.fixture(scope='module')
def project(tmp_path_factory):
    """A user's working folder: configs copied from the repository, data
    in ``data/my_dataset``."""
    d = tmp_path_factory.mktemp('my_project')
    shutil.copytree(osp.join(ROOT, 'configs', '_base_'),
                    d / 'configs' / '_base_')
    shutil.copytree(osp.join(ROOT, 'configs', 'custom'),
                    d / 'configs' / 'custom')
    edit_settings(
        d / 'configs' / 'custom' / 'custom_dataset.py',
        classes=CLASSES,
        palette=PALETTE,
        **TINY)
    make_custom(
        str(d / 'data' / 'my_dataset'),
        classes=CLASSES,
        n_train=4,
        n_val=2,
        size=(128, 192))
    return d


def test_custom_dataset_workflow(project, capfd):
    cwd = str(project)
    teacher_cfg = 'configs/custom/segformer_mit-b0_custom.py'
    student_cfg = 'configs/custom/sctnet-s_custom.py'

    # 0. the template reads the edited class list, in its order
    from mmengine.config import Config
    cfg = Config.fromfile(osp.join(cwd, student_cfg))
    assert tuple(cfg.train_dataloader.dataset.metainfo.classes) == CLASSES
    assert cfg.model.decode_head.num_classes == len(CLASSES)

    # 1. check the data
    if osp.isfile(osp.join(ROOT, 'tools', 'check_dataset.py')):
        out = run(['tools/check_dataset.py', student_cfg], cwd, capfd)
    else:
        warnings.warn('tools/check_dataset.py is not in the repository yet: '
                      'step 1 of the workflow was not run')

    # 2. train the SegFormer teacher (plain mmseg EncoderDecoder)
    out = run(['tools/train.py', teacher_cfg, '--cfg-options',
               'model.backbone.init_cfg=None'] + SCHEDULE, cwd, capfd)
    teacher_ckpt = osp.join(cwd, 'work_dirs', 'segformer_mit-b0_custom',
                            f'iter_{ITERS}.pth')
    assert osp.isfile(teacher_ckpt), out[-3000:]
    assert 'mIoU' in out

    # 3. convert it into teacher weights
    teacher = 'pretrained/Teacher_SegFormer_B0_custom.pth'
    run(['tools/pth_convert.py', teacher_ckpt, teacher], cwd, capfd)
    converted = torch.load(osp.join(cwd, teacher))
    assert converted['teacher_head.conv_seg.weight'].shape[0] == len(CLASSES)

    # 4. train SCTNet-S with SIAM (the config's default teacher path)
    out = run(['tools/train.py', student_cfg, '--cfg-options',
               'model.backbone.init_cfg=None'] + SCHEDULE, cwd, capfd)
    for term in ('decode.loss_ce', 'aux_0.loss_ce', 'siam.loss_sdha_logits',
                 'siam.loss_sdha_feat', 'siam.loss_bfa_stage4',
                 'siam.loss_bfa_stage3'):
        assert term in out, term
    # nan/zero CE would mean labels in the wrong id space
    ce = [float(v) for v in re.findall(r'decode\.loss_ce: ([0-9.e+-]+)', out)]
    assert ce and all(0 < v < 20 for v in ce), ce
    ckpt = osp.join(cwd, 'work_dirs', 'sctnet-s_custom', f'iter_{ITERS}.pth')
    state = safe_torch_load(ckpt)
    assert tuple(state['meta']['dataset_meta']['classes']) == CLASSES
    # the frozen teacher in the student's checkpoint is the trained one
    for k, v in converted.items():
        torch.testing.assert_close(
            state['state_dict']['auxiliary_head.1.' + k], v, msg=k)

    # 5. evaluate
    out = run(['tools/test.py', student_cfg, ckpt], cwd, capfd)
    miou = re.search(r'mIoU: ([0-9.]+)', out)
    assert miou and 0 <= float(miou.group(1)) <= 100
    rows = [c for c in CLASSES if re.search(rf'\|\s*{c}\s*\|', out)]
    assert rows == list(CLASSES), out[-3000:]  # per-class table, our order

    # 6. inference on the validation images
    run(['tools/inference.py', 'data/my_dataset/img_dir/val', student_cfg,
         ckpt, '--out', 'outputs/val'], cwd, capfd)
    for name in ('val_00000', 'val_00001'):
        img = cv2.imread(
            osp.join(cwd, 'data/my_dataset/img_dir/val', name + '.jpg'))
        label = cv2.imread(
            osp.join(cwd, 'outputs/val/labels', name + '.png'),
            cv2.IMREAD_UNCHANGED)
        assert label.shape == img.shape[:2] and label.dtype == np.uint8
        assert label.max() < len(CLASSES)
        overlay = cv2.imread(osp.join(cwd, 'outputs/val/overlay',
                                      name + '.png'))
        assert overlay.shape[0] > img.shape[0]
    # the inputs are untouched and nothing was written next to them
    assert sorted(os.listdir(osp.join(
        cwd, 'data/my_dataset/img_dir/val'))) == ['val_00000.jpg',
                                                  'val_00001.jpg']


# (student config, its teacher config, official/mmseg reference config)
PAIRS = [
    ('configs/custom/sctnet-s_custom.py',
     'configs/custom/segformer_mit-b0_custom.py', None),
    ('configs/custom/sctnet-s_mit-b2-teacher_custom.py',
     'configs/custom/segformer_mit-b2_custom.py',
     'configs/sctnet/ADE20K/sctnet-s_8x4_160k_ade.py'),
    ('configs/custom/sctnet-b_custom.py',
     'configs/custom/segformer_mit-b3_custom.py',
     'configs/sctnet/ADE20K/sctnet-b_8x4_160k_ade.py'),
]


def _shapes(model, prefix=''):
    return {prefix + k: tuple(v.shape) for k, v in model.state_dict().items()}


@pytest.mark.parametrize('student,teacher,official', PAIRS,
                         ids=['S+B0', 'S+B2', 'B+B3'])
def test_template_pairs(student, teacher, official):
    """Each student template holds exactly its teacher config's network
    (what tools/pth_convert.py writes loads into it), and equals the
    official SCTNet model of its size (with 8 classes)."""
    import mmseg_sctnet.models  # noqa: F401
    from helpers.models import build_cfg_model
    from mmengine.config import Config
    from mmseg.registry import MODELS
    s = build_cfg_model(student)
    tcfg = Config.fromfile(teacher)
    assert tcfg.model.type == 'EncoderDecoder'
    tcfg.model.backbone.init_cfg = None
    t = MODELS.build(tcfg.model)
    teacher_in_student = {
        k[len('auxiliary_head.1.'):]: v
        for k, v in _shapes(s).items() if '.teacher_' in k
    }
    converted = {}
    for k, v in _shapes(t).items():
        if k.startswith('backbone.'):
            converted['teacher_backbone.' + k[9:]] = v
        elif k.startswith('decode_head.'):
            converted['teacher_head.' + k[12:]] = v
    assert teacher_in_student == converted
    if official is not None:
        ref = build_cfg_model(official, **{'model.decode_head.num_classes': 8})
        assert _shapes(s) == _shapes(ref)
