"""SIAM's effect over seeds (``tools/demo.py --ablation``) and the
``'context'`` scenes it can run on.

* The context scene generator: the two versions of one seed (sky forced to
  day or dusk) differ only in sky pixels and in the road users' labels (car
  <-> person), every road-user label flips, and the nearest changed image
  pixel is at least ``CONTEXT_GAP`` x H rows from any changed label: the
  class of those pixels is decided by a cue far away, nothing local.
"""
import numpy as np
import pytest

from mmseg_sctnet.datasets.synthetic import (CLASSES_STREET, CONTEXT_CLASS,
                                             CONTEXT_GAP, render_scene)

CAR = CLASSES_STREET.index('car')
PERSON = CLASSES_STREET.index('person')
SKY = CLASSES_STREET.index('sky')


def _rows(mask):
    return np.nonzero(mask.any(axis=1))[0]


@pytest.mark.parametrize('size', [(128, 256), (64, 128)])
def test_context_labels_depend_only_on_the_far_cue(size):
    h = size[0]
    flipped = 0
    for seed in range(12):
        img_d, lab_d = render_scene(seed, size, scenes='context', cue='day')
        img_n, lab_n = render_scene(seed, size, scenes='context', cue='dusk')
        assert CONTEXT_CLASS == dict(day='car', dusk='person')
        # by day road users are cars, at dusk people; nothing else is
        assert not (lab_d == PERSON).any() and not (lab_n == CAR).any()
        users = lab_d == CAR
        assert users.any()
        np.testing.assert_array_equal(lab_n == PERSON, users)
        label_changed = lab_d != lab_n
        np.testing.assert_array_equal(label_changed, users)
        flipped += int(users.sum())
        # the images differ in sky pixels only (same sky in both labels)
        img_changed = (img_d != img_n).any(axis=2)
        assert img_changed.any()
        assert ((lab_d == SKY) | (lab_d == 255))[img_changed].all()
        np.testing.assert_array_equal(lab_d == SKY, lab_n == SKY)
        # ... and far above every changed label
        gap = _rows(label_changed).min() - _rows(img_changed).max()
        assert gap >= CONTEXT_GAP * h, (seed, gap)
        # the drawn cue is one of the two, with everything else equal
        img, lab = render_scene(seed, size, scenes='context')
        assert any((np.array_equal(img, i) and np.array_equal(lab, la))
                   for i, la in ((img_d, lab_d), (img_n, lab_n)))
    assert flipped > 0


def test_context_cues_are_balanced_and_street_scenes_refuse_a_cue():
    labels = [render_scene(s, (64, 128), scenes='context')[1]
              for s in range(40)]
    day = sum(int((lab == CAR).any()) for lab in labels)
    dusk = sum(int((lab == PERSON).any()) for lab in labels)
    assert day + dusk == 40 and 10 <= day <= 30
    with pytest.raises(ValueError, match='cue'):
        render_scene(0, (64, 128), cue='day')
    with pytest.raises(ValueError, match='scenes'):
        render_scene(0, (64, 128), scenes='night')


@pytest.fixture(scope='module')
def tiny_ablation(tmp_path_factory):
    """``run_ablation`` on a tiny set-up: 8 train / 4 val scenes of 64x128,
    a 1-iteration teacher, 2 pretraining epochs on 8 classes x 4 images,
    2 seeds x 2 arms x 2 starts of 1 student iteration each."""
    from mmseg_sctnet.experiments.ablation import run_ablation
    d = tmp_path_factory.mktemp('ablation')
    kwargs = dict(
        out_dir=str(d / 'out'), data_root=str(d / 'data'), seeds=2,
        n_train=8, n_val=4, size=(64, 128), teacher_iters=1,
        student_iters=1, batch_size=2, num_workers=0, pretrain_epochs=2,
        imagenet_root=str(d / 'imagenet'),
        imagenet_spec=dict(n_per_class=4, n_val_per_class=2), demo_dirs=())
    return run_ablation(**kwargs), kwargs


def test_ablation_outputs(tiny_ablation):
    import json
    import os.path as osp
    res, kw = tiny_ablation
    out = kw['out_dir']
    with open(osp.join(out, 'ablation.json')) as f:
        saved = json.load(f)
    assert list(saved)[:2] == ['siam', 'no_siam']
    assert saved['main_start'] == 'pretrained'
    assert set(saved['starts']) == {'pretrained', 'scratch'}
    for start, r in saved['starts'].items():
        assert len(r['siam']) == len(r['no_siam']) == 2
        runs = {(x['seed'], x['arm']): x for x in r['runs']}
        for i, seed in enumerate(saved['seeds']):
            a, b = runs[(seed, 'siam')], runs[(seed, 'no_siam')]
            assert r['siam'][i] == a['mIoU'] and r['no_siam'][i] == b['mIoU']
            # a paired comparison: same start within a seed ...
            assert a['init_sha256'] == b['init_sha256']
            assert a['batch_sha256'] == b['batch_sha256']
            assert a['max_iters'] == b['max_iters'] == 1
            # ... the SIAM terms only in the SIAM arm
            assert 'siam.loss_bfa_stage4' in a['losses']['curve']
            assert 'siam.loss_bfa_stage4' not in b['losses']['curve']
            assert 'ratio_align_to_ce' in a['losses']
            assert set(a['per_class']) == set(CLASSES_STREET)
        # ... and another start for another seed
        s0, s1 = (runs[(s, 'siam')] for s in saved['seeds'])
        assert s0['init_sha256'] != s1['init_sha256']
        # the summary is the mean and sample std of the listed values
        import statistics
        for arm in ('siam', 'no_siam'):
            st = r['summary'][arm]
            assert st['mean'] == pytest.approx(
                statistics.fmean(r[arm]), abs=0.006)
            assert st['std'] == pytest.approx(
                statistics.stdev(r[arm]), abs=0.006)
    assert saved['siam'] == saved['starts']['pretrained']['siam']
    # the pretrained start loaded the exported backbone; scratch did not
    p = saved['pretrain']
    assert p['num_tensors'] > 200 and osp.isfile(p['output'])
    pre = saved['starts']['pretrained']['runs'][0]['init_sha256']
    scr = saved['starts']['scratch']['runs'][0]['init_sha256']
    assert pre != scr
    with open(osp.join(out, 'ablation.md')) as f:
        md = f.read()
    assert '+-' in md and 'pretrained' in md and 'scratch' in md
    import cv2
    for png in ('ablation.png', 'loss_balance.png'):
        img = cv2.imread(osp.join(out, png))
        assert img is not None and img.shape[0] > 200


def test_ablation_rerun_reuses_every_finished_run(tiny_ablation, capsys):
    from mmseg_sctnet.experiments.ablation import run_ablation
    res, kw = tiny_ablation
    again = run_ablation(**kw)
    text = capsys.readouterr().out
    assert again['siam'] == res['siam'] and again['no_siam'] == res['no_siam']
    assert text.count('reusing ') >= 8 + 2  # 8 runs, teacher, backbone
    assert 'training the teacher' not in text


def test_ablation_refuses_bad_settings(tmp_path):
    from mmseg_sctnet.experiments.ablation import run_ablation
    from mmseg_sctnet.io.errors import ConfigError
    with pytest.raises(ConfigError, match='--seeds'):
        run_ablation(str(tmp_path / 'o'), seeds=0)
    with pytest.raises(ConfigError, match='--pretrain-epochs'):
        run_ablation(str(tmp_path / 'o'), pretrain_epochs=1)
    assert not (tmp_path / 'o').exists()


def test_ablation_with_a_given_backbone(tiny_ablation, tmp_path):
    """--backbone: the pretrained start from an existing export, no
    pretraining; same backbone and seed -> the same initial student."""
    from mmseg_sctnet.experiments.ablation import run_ablation
    res, kw = tiny_ablation
    given = res['pretrain']['output']
    out = run_ablation(**dict(kw, out_dir=str(tmp_path / 'out'), seeds=1,
                              starts=('pretrained', ), backbone=given))
    assert out['pretrain'] == dict(output=given, given=True,
                                   sha256=res['pretrain']['sha256'])
    assert not (tmp_path / 'out' / 'pretrain').exists()
    first = res['starts']['pretrained']['runs'][0]
    again = out['starts']['pretrained']['runs'][0]
    assert again['init_sha256'] == first['init_sha256']
    assert again['mIoU'] == first['mIoU']


def test_ablation_missing_backbone_is_refused(tmp_path):
    from mmseg_sctnet.experiments.ablation import run_ablation
    from mmseg_sctnet.io.errors import PathError
    with pytest.raises(PathError, match='nope.pth'):
        run_ablation(str(tmp_path / 'o'), backbone=str(tmp_path / 'nope.pth'))
    assert not (tmp_path / 'o').exists()


@pytest.mark.parametrize('argv,name', [
    (['--seeds', '5'], '--seeds'),
    (['--backbone', 'b.pth'], '--backbone'),
    (['--ablation', '--no-siam'], '--no-siam'),
])
def test_demo_cli_refuses_ablation_options_out_of_place(argv, name, capsys):
    import importlib.util
    import os.path as osp
    root = osp.dirname(osp.dirname(osp.abspath(__file__)))
    spec = importlib.util.spec_from_file_location(
        'demo_tool', osp.join(root, 'tools', 'demo.py'))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    with pytest.raises(SystemExit) as e:
        tool.parse_args(argv)
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert ': error: ' in err and name in err and '--ablation' in err
