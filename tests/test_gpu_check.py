"""``tools/gpu_check.sh`` on a machine without a GPU: the one-line refusal,
the table, and the plan of what runs (every step skipped or refused here;
the GPU steps themselves need a GPU and are not run by the suite)."""
import json
import os
import os.path as osp
import subprocess

from helpers.models import ROOT
from helpers.tools import tool_env

from mmseg_sctnet.benchmark.gpu_check import (CheckResult, format_table,
                                              run_gpu_check)


def test_refused_without_a_visible_cuda_device(tmp_path):
    out = tmp_path / 'out'
    res = subprocess.run(
        ['bash', 'tools/gpu_check.sh', '--out-dir', str(out)],
        cwd=ROOT,
        env=tool_env({'CUDA_VISIBLE_DEVICES': ''}),  # hidden on any machine
        capture_output=True,
        text=True,
        timeout=300)
    assert res.returncode == 1
    text = res.stdout + res.stderr
    errors = [ln for ln in text.splitlines() if ln.startswith('error:')]
    assert len(errors) == 1, text[-2000:]
    assert errors[0].startswith(
        'error: no CUDA device is visible: torch.cuda.is_available() is '
        'False (torch ')
    assert "CUDA_VISIBLE_DEVICES=''" in errors[0]
    assert 'Traceback' not in text
    assert not out.exists()  # refused before anything was written


def test_table_format():
    table = format_table([
        CheckResult('speed a|b', 'ok', '160.3 FPS (6.24 ms)',
                    'official\n160.3'),
        CheckResult('TensorRT', 'skipped', note='not installed'),
    ])
    assert table == (
        '| check | result | figures | notes |\n'
        '|---|---|---|---|\n'
        '| speed a\\|b | ok | 160.3 FPS (6.24 ms) | official 160.3 |\n'
        '| TensorRT | skipped |  | not installed |\n')


def test_what_runs_and_what_is_skipped(tmp_path, capsys):
    """With the steps left out (--skip) and one (pretended) GPU: one row
    per check in order, the reasons, the table printed and written."""
    res = run_gpu_check(
        out_dir=str(tmp_path), skip='speed,train,tensorrt',
        devices=['Pretend GPU'])
    rows = [(r.check, r.status, r.note) for r in res['results']]
    assert rows[0][:2] == ('CUDA devices', 'ok')
    assert res['results'][0].figures == '1: Pretend GPU'
    assert rows[1:] == [
        ('speed/torch_speed.py', 'skipped', '--skip speed'),
        ('tools/train.py fp32 and --amp', 'skipped', '--skip train'),
        ('tools/dist_train.sh (2 GPUs x 8, SyncBN)', 'skipped',
         '1 GPU visible; two are needed'),
        ('ONNX -> TensorRT fp16', 'skipped', '--skip tensorrt'),
    ]
    run_dir = res['out_dir']
    assert osp.dirname(run_dir) == str(tmp_path)
    assert sorted(os.listdir(run_dir)) == ['gpu_check.json', 'gpu_check.md']
    with open(osp.join(run_dir, 'gpu_check.md')) as f:
        assert f.read() == res['table']
    with open(osp.join(run_dir, 'gpu_check.json')) as f:
        assert [r['status'] for r in json.load(f)['results']] == [
            'ok', 'skipped', 'skipped', 'skipped', 'skipped']
    assert res['table'] in capsys.readouterr().out
