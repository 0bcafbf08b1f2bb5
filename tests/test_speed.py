"""Speed scripts run end to end at a tiny size on CPU (figures not judged)."""
import importlib.util
import json
import os
import os.path as osp
import subprocess

import matplotlib.image as mpimg
import pytest
from helpers.tools import PY
from helpers.models import ROOT

SPEED = osp.join(ROOT, 'speed')
FAST = ['--device', 'cpu', '--warmup', '1', '--iters', '1']


def load_speed(name):
    """Import a speed/ script as a module (it imports the installed
    ``mmseg_sctnet``; no sys.path edits)."""
    spec = importlib.util.spec_from_file_location(
        f'speed_{name}', osp.join(SPEED, f'{name}.py'))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_torch_speed_json_and_options(tmp_path, capsys):
    ts = load_speed('torch_speed')
    out = tmp_path / 'r.json'
    res = ts.main(['--type', 'sctnet-b-seg50', '--shape', '64', '96',
                   '--deploy', '--json', str(out)] + FAST)
    text = capsys.readouterr().out
    assert 'Speed Testing' in text and 'FPS' in text
    saved = json.loads(out.read_text())
    assert saved['params'] == 17_437_779  # published SCTNet-B count
    assert saved['shape'] == [64, 96] and saved['deploy'] is True
    assert saved['channels_last'] is True and saved['iterations'] == 1
    assert saved['latency_ms'] > 0
    assert abs(saved['fps'] * saved['latency_ms'] - 1000) < 1e-6
    # calibration path (no --iters) and batch > 1
    res = ts.main(['--type', 'sctnet-s-ade', '--shape', '64', '64',
                   '--device', 'cpu', '--warmup', '0', '--min-time', '0.05',
                   '--calib-time', '0.01', '--batch', '2'])
    assert res['iterations'] >= 1 and res['batch'] == 2
    assert res['fps'] == pytest.approx(2000 / res['latency_ms'])
    for bad, what in ((['--shape', '64', '64', '--json', str(out)], 'exists'),
                      (['--fp16'], '--fp16 needs --device cuda'),
                      (['--dtype', 'fp16'], '--dtype fp16 needs a CUDA')):
        with pytest.raises(SystemExit) as e:
            ts.main(['--type', 'sctnet-s-seg50'] + bad + FAST)
        assert e.value.code == 1
        err = capsys.readouterr().err
        assert err.startswith('error: ') and what in err, err
    with pytest.raises(SystemExit):
        ts.main(['--type', 'sctnet-x'])


def test_torch_speed_official_usage_from_speed_folder():
    """``cd speed; python torch_speed.py --type ...`` (official README).

    The script imports the installed package; PYTHONPATH points at this
    checkout only so that a worktree tests its own copy (``make install``
    does the same for a clone)."""
    env = dict(os.environ, PYTHONPATH=ROOT)
    r = subprocess.run(
        [PY, 'torch_speed.py', '--type', 'sctnet-s-seg75', '--shape', '64',
         '64', '--device', 'cpu', '--warmup', '0', '--iters', '1'],
        cwd=SPEED, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-2000:]
    assert 'latency' in r.stdout and 'sctnet-s-seg75' in r.stdout


def test_compare_peers_table_json_chart(tmp_path, capsys):
    cp = load_speed('compare_peers')
    out = tmp_path / 'peers'
    res = cp.main(['--models', 'sctnet-s,sctnet-b,pidnet-s', '--shape', '64',
                   '128', '--deploy', '--out-dir', str(out)] + FAST)
    rows = {r['name']: r for r in res['rows']}
    assert set(rows) == {'sctnet-s', 'sctnet-b', 'pidnet-s'}
    assert rows['sctnet-b']['relative_speed'] == 1.0
    assert res['reference'] == 'SCTNet-B'
    # published parameter counts: SCTNet-S 4.65 M, PIDNet-S 7.6 M
    assert rows['sctnet-s']['params'] == 4_654_643
    assert round(rows['pidnet-s']['params'] / 1e6, 1) == 7.6
    assert rows['sctnet-s']['mode'] == 'switch_to_deploy'
    assert 'conv-BN pairs folded' in rows['pidnet-s']['mode']
    assert rows['sctnet-b']['gflops'] > rows['sctnet-s']['gflops'] > 0
    table = (out / 'table.txt').read_text()
    assert 'PIDNet-S' in table and 'vs SCTNet-B' in table
    saved = json.loads((out / 'results.json').read_text())
    assert len(saved['rows']) == 3 and saved['options']['deploy'] is True
    img = mpimg.imread(str(out / 'chart.png'))
    assert img.ndim == 3 and img.shape[0] > 100
    with pytest.raises(SystemExit):
        cp.main(['--models', 'sctnet-s', '--shape', '64', '128', '--out-dir',
                 str(out)] + FAST)
    assert 'exist' in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cp.main(['--models', 'resnet'])
    assert "error: --models: unknown ['resnet']" in capsys.readouterr().err


def test_deploy_speedup_script_checks_outputs():
    ds = load_speed('deploy_speedup')
    res = ds.main(['--type', 'sctnet-s-seg50', '--shape', '64', '96',
                   '--device', 'cpu', '--rounds', '1', '--warmup', '1'])
    assert set(res['variants']) == {'eager', 'eager-cl', 'deploy',
                                    'deploy-nchw', 'deploy-bn'}
    for v in res['variants'].values():
        assert v['max_rel_err'] < 1e-4 and v['median_ms'] > 0
