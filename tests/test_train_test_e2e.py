"""tools/train.py + tools/test.py on the official leaf configs, end to end.

For each dataset: generated data in the dataset's real on-disk layout, read
by MMSegmentation's own dataset class; a few SIAM training iterations of the
official config (tiny crops, CPU, a MiT-B0-sized teacher converted with
tools/pth_convert.py); the checkpoint evaluated by tools/test.py (per-class
IoU of every class of the dataset, mIoU); and the checkpoint reloaded with
``mmseg.apis.init_model`` giving exactly the label maps test.py wrote.
"""
import glob
import json
import os.path as osp

import cv2
import numpy as np
import pytest
import torch
from helpers.tools import load_tool
from helpers.train import (b0_teacher_options,
                           small_run_options,
                           write_segformer_teacher)

from mmseg_sctnet.engine.training_run import (build_train_config,
                                              last_checkpoint)
from mmseg_sctnet.io.checkpoint import safe_torch_load
from mmseg_sctnet.datasets import (make_ade20k, make_cityscapes,
                                   make_coco_stuff10k)

CASES = {
    'cityscapes': ('configs/sctnet/cityscapes/sctnet-s_seg50_8x2_160k_'
                   'cityscapes.py', make_cityscapes, (64, 128), 19, False,
                   'leftImg8bit/val'),
    'ade20k': ('configs/sctnet/ADE20K/sctnet-s_8x4_160k_ade.py', make_ade20k,
               (64, 64), 150, True, 'images/validation'),
    'coco_stuff10k': ('configs/sctnet/COCO-Stuff-10K/sctnet_b_4x4_160k.py',
                      make_coco_stuff10k, (64, 64), 171, True,
                      'images/test2014'),
}


@pytest.fixture(scope='module')
def tools():
    return (load_tool('train.py'), load_tool('test.py'),
            load_tool('pth_convert.py'))


@pytest.mark.parametrize('dataset', list(CASES))
def test_train_then_test_leaf_config(dataset, tools, tmp_path):
    train_tool, test_tool, convert_tool = tools
    config, make, size, n_cls, reduce_zero, val_imgs = CASES[dataset]
    data = str(tmp_path / 'data') + '/'
    make(data, n_train=4, n_val=2, size=size, seed=3)
    segformer = write_segformer_teacher(
        str(tmp_path / 'segformer.pth'), n_cls, seed=1)
    teacher = str(tmp_path / 'teacher.pth')
    convert_tool.main([segformer, teacher])

    work = str(tmp_path / 'work')
    h, w = size
    crop = (min(h, 64), min(w, 64))
    opts = small_run_options(data, crop=crop, test_scale=(w, h)) + \
        b0_teacher_options(teacher)
    runner = train_tool.main([config, '--work-dir', work, '--cfg-options'] +
                             opts)
    model = runner.model
    assert model.use_siam and len(model.guidance_heads) == 1
    assert model.guidance_heads[0].teacher_widths == dict(
        stage3=160, stage4=256, decoder=1024)
    assert not any(isinstance(m, torch.nn.SyncBatchNorm)
                   for m in model.modules())
    ckpt = osp.join(work, 'iter_2.pth')
    assert osp.isfile(ckpt)
    assert last_checkpoint(work) == ckpt
    # the SIAM terms were logged by the training loop
    scalars = glob.glob(osp.join(work, '*', 'vis_data', 'scalars.json'))
    assert scalars
    with open(scalars[0]) as f:
        recs = [json.loads(line) for line in f]
    trained = [r for r in recs if 'siam.loss_bfa_stage3' in r]
    assert len(trained) == 2
    assert all(np.isfinite(r['loss']) for r in trained)
    assert any('mIoU' in r for r in recs)  # validation ran

    out_dir = str(tmp_path / 'pred')
    metrics_json = str(tmp_path / 'metrics.json')
    test_opts = [o for o in opts if o.startswith('test_dataloader')]
    result = test_tool.main([
        config, ckpt, '--eval', 'mIoU', '--work-dir',
        str(tmp_path / 'test'), '--out', out_dir, '--metrics-json',
        metrics_json, '--cfg-options'
    ] + test_opts)
    m = result['metrics']
    assert 0.0 <= m['mIoU'] <= 100.0 and 0.0 <= m['aAcc'] <= 100.0
    assert len(result['per_class']) == n_cls
    ious = [v['IoU'] for v in result['per_class'].values()]
    present = [v for v in ious if v is not None]
    # classes absent from ground truth and prediction are NaN (None), the
    # rest average to the reported mIoU
    assert present and abs(np.mean(present) - m['mIoU']) < 0.02
    with open(metrics_json) as f:
        assert json.load(f)['metrics']['mIoU'] == m['mIoU']

    # the checkpoint reloads for inference and reproduces test.py's output
    from mmseg.apis import inference_model, init_model
    model = init_model(
        config,
        ckpt,
        device='cpu',
        cfg_options={
            'test_pipeline.1.scale': (w, h),
            'model.backbone.init_cfg': None
        })
    assert not model.with_auxiliary_head or not model.guidance_heads
    img = sorted(glob.glob(osp.join(data, val_imgs, '**', '*.*'),
                           recursive=True))[0]
    pred = inference_model(model, img).pred_sem_seg.data[0].numpy()
    stem = osp.splitext(osp.basename(img))[0]
    written = cv2.imread(osp.join(out_dir, stem + '.png'),
                         cv2.IMREAD_UNCHANGED)
    expected = pred + 1 if reduce_zero else pred
    np.testing.assert_array_equal(written, expected.astype(written.dtype))


def test_resume_continues_from_the_checkpoint(tools, tmp_path):
    """--resume picks up iteration, optimizer and scheduler state."""
    train_tool = tools[0]
    config = CASES['cityscapes'][0]
    data = str(tmp_path / 'data') + '/'
    make_cityscapes(data, n_train=2, n_val=1, size=(64, 128), seed=4)
    work = str(tmp_path / 'work')
    opts = small_run_options(data, crop=(64, 64), test_scale=(128, 64)) + [
        'model.use_siam=False'
    ]
    first = train_tool.main([config, '--work-dir', work, '--cfg-options'] +
                            opts)
    lr_after_2 = first.optim_wrapper.get_lr()['lr'][0]
    ckpt2 = osp.join(work, 'iter_2.pth')
    opts4 = [o.replace('max_iters=2', 'max_iters=4') for o in opts]
    second = train_tool.main(
        [config, '--work-dir', work, '--resume', '--cfg-options'] + opts4)
    assert second.iter == 4
    assert osp.isfile(osp.join(work, 'iter_4.pth'))
    # resumed state: optimizer steps continue from the checkpoint's
    state = safe_torch_load(ckpt2, map_location='cpu')
    assert state['meta']['iter'] == 2
    assert second.optim_wrapper.get_lr()['lr'][0] > lr_after_2  # warm-up
    adam = second.optim_wrapper.optimizer.state
    assert max(int(s['step']) for s in adam.values()) == 4


def test_train_tool_errors(tools, tmp_path, capsys, monkeypatch):
    train_tool, test_tool, _ = tools

    def refused(tool, argv):
        capsys.readouterr()
        with pytest.raises(SystemExit) as e:
            tool.main(argv)
        err = capsys.readouterr().err
        assert e.value.code == 1 and 'Traceback' not in err
        lines = [ln for ln in err.splitlines() if ln.startswith('error: ')]
        assert len(lines) == 1, err
        return lines[0]

    assert 'config file not found' in refused(train_tool, ['configs/nope.py'])
    config = CASES['cityscapes'][0]
    assert 'Checkpoint file not found' in refused(
        test_tool, [config, str(tmp_path / 'missing.pth')])
    ckpt = tmp_path / 'x.pth'
    torch.save(dict(state_dict={}), str(ckpt))
    assert 'unsupported --eval' in refused(
        test_tool, [config, str(ckpt), '--eval', 'bbox'])
    if not torch.cuda.is_available():  # a CPU without native bf16
        monkeypatch.setenv('SCTNET_CPU_FLAGS', 'avx2 fma')
        assert '--amp needs a CUDA GPU' in refused(
            train_tool, [config, '--amp', '--work-dir',
                         str(tmp_path)])
        monkeypatch.delenv('SCTNET_CPU_FLAGS')
    cfg = build_train_config(
        config, work_dir=str(tmp_path), allow_dataset_warnings=True)
    assert cfg.dataset_check == dict(allow_warnings=True)
