"""The SIAM studies and the training studies: the pre-registered report
from ablation outputs (statistics against an independent computation),
the sensitivity study's weight scaling, the training-cost benchmark and
the batch/--amp study on tiny generated data."""
import json
import math
import os
import os.path as osp
import statistics

import pytest
from helpers.tools import load_tool

from mmseg_sctnet.experiments import siam_studies as S
from mmseg_sctnet.io.cpu import cpu_bf16_feature

#: the two-sided 97.5 % quantiles of Student's t (a table)
T975 = {2: 4.302652729911275, 5: 2.570581835636314}


def _run(seed, arm, miou, person, car, ratio):
    ce = [[s, 1.0] for s in (10, 20, 30)]
    al = [[s, ratio / 4] for s in (10, 20, 30)]
    curve = {'decode.loss_ce': ce, 'aux_0.loss_ce': [[s, 0.0] for s in
                                                     (10, 20, 30)]}
    if arm == 'siam':
        curve.update({k: al for k in S.SIAM_TERMS})
    return dict(seed=seed, arm=arm, mIoU=miou, command=f'cmd {arm}',
                per_class=dict(person=dict(IoU=person), car=dict(IoU=car)),
                losses=dict(curve=curve))


def _ablation(folder, iters, siam, no_siam):
    runs = []
    for seed, (a, b) in enumerate(zip(siam, no_siam)):
        runs.append(_run(seed, 'siam', a, 40 + seed, 10 + seed, 8.0))
        runs.append(_run(seed, 'no_siam', b, 45, 5, 0))
    os.makedirs(folder)
    with open(osp.join(folder, 'ablation.json'), 'w') as f:
        json.dump(dict(scenes='context', schedule=dict(student_iters=iters),
                       teacher=dict(val_mIoU=84.4, file='t.pth'),
                       pretrain=dict(output='b.pth'),
                       starts=dict(pretrained=dict(runs=runs))), f)


def test_prereg_report_statistics(tmp_path):
    siam = [75.0, 74.0, 76.5, 73.0, 75.5, 74.5]
    no_siam = [74.0, 74.5, 74.0, 73.5, 74.0, 73.0]
    short = [70.0, 71.0, 72.0, 69.0, 70.5, 70.0]
    _ablation(str(tmp_path / 'a200'), 200, siam, no_siam)
    _ablation(str(tmp_path / 'a600'), 600, short, no_siam)
    res = S.prereg_report({200: str(tmp_path / 'a200'),
                           600: str(tmp_path / 'a600')},
                          str(tmp_path / 'out'))
    for length, xs in ((200, siam), (600, short)):
        r = res['lengths'][length]
        d = [round(a - b, 2) for a, b in zip(xs, no_siam)]
        assert r['difference'] == d
        mean, sd = statistics.fmean(d), statistics.stdev(d)
        half = T975[5] * sd / math.sqrt(6)
        ci = r['interval']
        assert ci['mean'] == pytest.approx(mean)
        assert ci['low'] == pytest.approx(mean - half)
        assert ci['high'] == pytest.approx(mean + half)
        want = ('SIAM helps' if mean - half > 0 else 'SIAM hurts'
                if mean + half < 0 else 'not established')
        assert r['reading'] == want
        assert r['class_iou_mean']['siam']['person'] == pytest.approx(42.5)
        assert r['ratio_align_to_ce'][0] == [10, 8.0] or \
            tuple(r['ratio_align_to_ce'][0]) == (10, 8.0)
    assert res['lengths'][600]['reading'] == 'SIAM hurts'
    for f in ('prereg.json', 'prereg.md', 'prereg.png'):
        assert osp.getsize(tmp_path / 'out' / f) > 0
    table = (tmp_path / 'out' / 'prereg.md').read_text()
    assert '| SIAM - no SIAM | +1.00 | -0.50 |' in table


def test_sensitivity_scales_the_four_weights_together():
    w = S.official_weights()
    assert w == [3.0, 15.0, 15.0, 15.0]
    assert S.weight_options(1) == []
    assert S.weight_options(0.1) == [
        'model.siam_head.loss_decode.loss_weight=[0.3,1.5,1.5,1.5]']
    assert S.arm_name(1) == 'siam' and S.arm_name(0.01) == 'siam_x0.01'
    ci = S.t_interval([1.0, 2.0, 3.0])
    assert ci['high'] - ci['mean'] == pytest.approx(T975[2] * 1 / 3**.5)


def test_train_cost_benchmark_runs_and_refuses(capsys):
    from mmseg_sctnet.benchmark.train_cost import train_cost
    res = train_cost(batch=2, shape=(64, 128), rounds=1, iters=1, warmup=0,
                     amp=cpu_bf16_feature() is not None)
    names = set(res['variants'])
    assert {'student', 'student+siam', 'teacher forward',
            'siam head (teacher + alignment)'} <= names
    assert res['variants']['student']['x_student'] == 1.0
    assert res['device'] and res['batch'] == 2
    tool = load_tool('../speed/train_cost.py')
    with pytest.raises(SystemExit) as e:
        tool.main(['--config',
                   'configs/demo/segformer_mit-b0_demo_cityscapes.py'])
    assert e.value.code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith('error: ')
    assert 'segformer_mit-b0_demo_cityscapes.py' in err[0]


def test_training_study_scales_the_lr_and_pairs_the_seeds(tmp_path):
    from mmseg_sctnet.experiments.demo import prepare_data
    from mmseg_sctnet.experiments.training_studies import run_training_study
    data = str(tmp_path / 'data')
    prepare_data(data, n_train=8, n_val=2, size=(64, 128))
    amp = cpu_bf16_feature() is not None
    res = run_training_study(str(tmp_path / 'out'), seeds=1, batches=(2, ),
                             amp=amp, data_root=data, student_iters=2,
                             num_workers=0, teacher_iters=1)
    names = ['batch2'] + (['batch2_amp'] if amp else [])
    assert list(res['summary']) == names
    assert res['summary']['batch2']['lr'] == pytest.approx(
        res['base_lr'] * 2 / res['base_batch_size'])
    assert res['same_start_per_seed']
    # the scaled lr is what MMEngine used (its log line)
    for name in names:
        work = osp.join(str(tmp_path / 'out'), 'scratch', 'seed0', name)
        logs = [osp.join(dp, f) for dp, _, fs in os.walk(work) for f in fs
                if f.endswith('.log')]
        log = open(logs[0]).read()
        lr = res['summary'][name]['lr']
        assert f'-> {lr:g}' in log, name
        if name.endswith('_amp'):
            assert 'CPUBF16OptimWrapper' in log
    assert osp.getsize(res['files']['plot']) > 0
