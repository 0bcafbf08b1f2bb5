"""Multi-process training and testing on CPU with the real launchers.

``bash tools/dist_train.sh CONFIG 2`` (torchrun, 2 processes) trains a few
iterations of the demo configuration with SIAM; without CUDA train.py
switches to gloo and BN itself. ``bash tools/dist_test.sh`` (2 processes)
evaluates the checkpoint it wrote. ``tools/slurm_train.sh`` runs through a
stand-in ``srun``/``scontrol`` that start one task the way Slurm does.
"""
import json
import os
import os.path as osp

import pytest
import torch
from helpers.tools import fake_slurm, free_port, load_tool, run
from helpers.train import (b0_teacher_options,
                           small_run_options,
                           write_segformer_teacher)

from mmseg_sctnet.io.checkpoint import safe_torch_load
from mmseg_sctnet.datasets import make_cityscapes

DEMO_CFG = 'configs/demo/sctnet-s_demo_cityscapes.py'


@pytest.fixture(scope='module')
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp('dist')
    data = str(root / 'data') + '/'
    make_cityscapes(data, n_train=8, n_val=4, size=(64, 128), seed=5)
    segformer = write_segformer_teacher(
        str(root / 'segformer.pth'), num_classes=8, channels=128)
    teacher = str(root / 'teacher.pth')
    load_tool('pth_convert.py').main([segformer, teacher])
    opts = small_run_options(
        data, crop=(64, 64), test_scale=(128, 64), iters=2,
        batch=2) + b0_teacher_options(teacher, channels=128)
    return root, opts


@pytest.mark.skipif(torch.cuda.is_available(), reason='the CPU path')
def test_dist_train_two_processes_then_dist_test(setup):
    root, opts = setup
    work = str(root / 'work')
    res = run(['bash', 'tools/dist_train.sh', DEMO_CFG, '2', '--work-dir',
               work, '--cfg-options'] + opts,
              env=dict(MASTER_PORT=str(free_port())))
    out = res.stdout
    assert res.returncode == 0, out[-3000:]
    # both ranks ran, with gloo, on CPU, with the frozen teacher
    assert out.count("No CUDA: distributed backend 'nccl' -> 'gloo'.") == 2
    assert 'Distributed training: True' in out
    assert 'Loaded frozen teacher' in out
    assert 'Iter(train) [2/2]' in out
    ckpt = osp.join(work, 'iter_2.pth')
    assert osp.isfile(ckpt)
    state = safe_torch_load(ckpt, map_location='cpu')
    assert state['meta']['iter'] == 2
    assert not any(k.startswith('module.') for k in state['state_dict'])

    test_opts = [o for o in opts if o.startswith('test_dataloader')]
    metrics = str(root / 'metrics.json')
    res = run(['bash', 'tools/dist_test.sh', DEMO_CFG, ckpt, '2',
               '--work-dir', str(root / 'test'), '--metrics-json', metrics,
               '--cfg-options'] + test_opts,
              env=dict(MASTER_PORT=str(free_port())))
    assert res.returncode == 0, res.stdout[-3000:]
    with open(metrics) as f:
        result = json.load(f)
    assert 0.0 <= result['metrics']['mIoU'] <= 100.0
    assert list(result['per_class']) == [
        'road', 'sidewalk', 'building', 'pole', 'vegetation', 'sky',
        'person', 'car'
    ]
    assert f"mIoU: {result['metrics']['mIoU']:.2f}" in res.stdout

    # the distributed result equals a single-process evaluation
    single = load_tool('test.py').main(
        [DEMO_CFG, ckpt, '--work-dir', str(root / 'test1'), '--cfg-options']
        + test_opts)
    assert single['metrics'] == result['metrics']

    # the exported ONNX file evaluates the same way in 2 processes (no DDP
    # around the parameter-free onnxruntime segmentor; one thread each)
    from mmseg_sctnet.deploy.onnx_export import export_onnx
    onnx_file = str(root / 'student.onnx')
    export_onnx(DEMO_CFG, ckpt, (64, 128), dynamic=True, out=onnx_file)
    metrics = str(root / 'metrics_onnx.json')
    res = run(['bash', 'tools/dist_test.sh', DEMO_CFG, onnx_file, '2',
               '--work-dir', str(root / 'test_onnx'), '--metrics-json',
               metrics, '--cfg-options'] + test_opts,
              env=dict(MASTER_PORT=str(free_port())))
    assert res.returncode == 0, res.stdout[-3000:]
    assert res.stdout.count('onnxruntime: 1 thread(s) per process') == 2
    with open(metrics) as f:
        onnx_result = json.load(f)
    for k, v in single['metrics'].items():
        assert abs(onnx_result['metrics'][k] - v) <= 0.01, (k, v)


@pytest.mark.skipif(torch.cuda.is_available(), reason='the CPU path')
def test_slurm_train_script(setup):
    root, opts = setup
    bindir = str(root / 'bin')
    fake_slurm(bindir)
    work = str(root / 'slurm_work')
    opts = [o.replace('max_iters=2', 'max_iters=1') for o in opts]
    opts = [o for o in opts if 'interval=2' not in o] + [
        'train_cfg.val_interval=100', 'default_hooks.checkpoint.interval=1'
    ]
    res = run(['bash', 'tools/slurm_train.sh', 'gpu-part', 'sct', DEMO_CFG,
               '--work-dir', work, '--cfg-options'] + opts,
              env=dict(
                  PATH=bindir + os.pathsep + os.environ['PATH'],
                  GPUS='1',
                  MASTER_PORT=str(free_port())))
    assert res.returncode == 0, res.stdout[-3000:]
    with open(osp.join(bindir, 'srun_args.txt')) as f:
        srun = f.read()
    assert '-p gpu-part' in srun and '--job-name=sct' in srun
    assert '--ntasks=1' in srun and '--launcher slurm' in srun
    assert 'Distributed launcher: slurm' in res.stdout
    assert osp.isfile(osp.join(work, 'iter_1.pth'))
