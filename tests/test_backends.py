"""Backends by precision: the bf16/fp16 capability check (no silent
fallback), reduced-precision inference, and speed/compare_backends.py."""
import json
import subprocess
import sys

import matplotlib.image as mpimg
import pytest
import torch
from test_speed import load_speed

from mmseg_sctnet.benchmark import harness as H
from mmseg_sctnet.deploy import dtype as D
from mmseg_sctnet.io.errors import DeployUsageError, UnsupportedDtypeError


def test_bf16_refused_on_a_cpu_without_native_support(monkeypatch):
    # an AVX2-only CPU (Zen 3): no avx512_bf16 / amx_bf16 flag
    flags = frozenset({'avx', 'avx2', 'fma', 'sse4_2'})
    assert D.cpu_bf16_feature(flags) is None
    assert D.cpu_bf16_feature(flags | {'avx512_bf16'}) == 'avx512_bf16'
    assert D.cpu_bf16_feature(flags | {'amx_bf16'}) == 'amx_bf16'
    with pytest.raises(UnsupportedDtypeError, match='AVX512-BF16'):
        D.check_dtype('bf16', 'cpu', bf16_feature=lambda: None)
    D.check_dtype('bf16', 'cpu', bf16_feature=lambda: 'avx512_bf16')
    D.check_dtype('fp32', 'cpu', bf16_feature=lambda: None)
    with pytest.raises(UnsupportedDtypeError, match='CUDA'):
        D.check_dtype('fp16', 'cpu')
    # the speed script refuses before building anything, one error: line
    monkeypatch.setattr(D, 'cpu_bf16_feature', lambda flags=None: None)
    ts = load_speed('torch_speed')
    with pytest.raises(SystemExit) as e:
        ts.main(['--type', 'sctnet-s-seg50', '--device', 'cpu', '--dtype',
                 'bf16', '--iters', '1'])
    assert e.value.code == 1


def test_cpu_flags_from_the_environment(monkeypatch):
    """SCTNET_CPU_FLAGS replaces the detected flags (how the command-line
    refusals are tested on any machine): no bf16 flag, no torch probe."""
    monkeypatch.setenv(D.CPU_FLAGS_ENV, 'avx avx2,fma')
    assert D.cpu_flags() == {'avx', 'avx2', 'fma'}
    assert D.cpu_bf16_feature() is None
    with pytest.raises(UnsupportedDtypeError, match=r'\$SCTNET_CPU_FLAGS'):
        D.check_dtype('bf16', 'cpu')
    monkeypatch.setenv(D.CPU_FLAGS_ENV, '')
    assert D.cpu_bf16_feature() is None
    monkeypatch.setenv(D.CPU_FLAGS_ENV, 'avx2 amx_bf16')
    assert D.cpu_bf16_feature() == 'amx_bf16'
    D.check_dtype('bf16', 'cpu')


@pytest.mark.skipif(D.cpu_bf16_feature() is None,
                    reason='this CPU has no native bf16')
def test_bf16_inference_agrees_with_fp32():
    from mmseg_sctnet.deploy import (SegmentorWithResize,
                                     build_inference_model, switch_to_deploy)
    from mmseg_sctnet.benchmark.harness import randomize_bn_statistics
    base = build_inference_model(
        'configs/sctnet/cityscapes/sctnet-s_seg50_8x2_160k_cityscapes.py')
    randomize_bn_statistics(base)
    fp32 = SegmentorWithResize(switch_to_deploy(base))
    x = torch.randn(1, 3, 64, 128, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        ref = fp32(x)
        for mode in D.MODES:
            import copy
            low = D.with_dtype(copy.deepcopy(fp32), 'bf16', 'cpu', mode)
            out = low(x)
            assert out.dtype == torch.float32 and out.shape == ref.shape
            agree = (out.argmax(1) == ref.argmax(1)).float().mean().item()
            assert agree > 0.95, (mode, agree)
            assert 0 < (out - ref).abs().max() / ref.abs().max() < 0.1


def test_compare_backends_writes_table_json_chart(tmp_path):
    cb = load_speed('compare_backends')
    out = tmp_path / 'b'
    res = cb.main(['--type', 'sctnet-s-seg50', '--shape', '64', '128',
                   '--backends', 'deploy,ort-fp32,ort-int8,bf16,fp16',
                   '--rounds', '1', '--warmup', '1', '--calib-num', '2',
                   '--out-dir', str(out), '--json', str(tmp_path / 'r.json')])
    saved = json.loads((tmp_path / 'r.json').read_text())
    assert saved['backends'].keys() == res['backends'].keys()
    timed = set(saved['backends'])
    assert {'eager', 'deploy', 'ort-fp32', 'ort-int8'} <= timed
    # bf16 runs where the CPU has it, and is reported as skipped otherwise
    assert ('bf16' in timed) == (D.cpu_bf16_feature() is not None)
    assert ('bf16' in saved['skipped']) != ('bf16' in timed)
    assert 'fp16' in saved['skipped'] and 'CUDA' in saved['skipped']['fp16']
    for name, row in saved['backends'].items():
        assert row['latency_ms'] > 0 and len(row['rounds_ms']) == 1
    assert saved['backends']['eager']['speedup'] == 1.0
    assert saved['backends']['ort-fp32']['max_rel_err'] < 1e-4
    assert saved['backends']['deploy']['max_rel_err'] < 1e-4
    assert saved['backends']['ort-int8']['agreement'] > 0.8
    b = saved['backends']
    # int8 weights: about a quarter of the fp32 file
    assert b['ort-int8']['size_mb'] < 0.45 * b['ort-fp32']['size_mb']
    assert 0.8 < b['ort-fp32']['size_mb'] / b['deploy']['size_mb'] < 1.25
    assert saved['cpu'] and isinstance(saved['cpu_flags'], list)
    assert 'ort-int8' in (out / 'table.txt').read_text()
    img = mpimg.imread(str(out / 'chart.png'))
    assert img.ndim == 3 and img.shape[0] > 100


_FAULTS = '''
import resource, torch
from mmseg_sctnet.benchmark import harness as H


def faults_per_64mib():
    torch.ones(2**24).sum()
    f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(5):
        torch.ones(2**24).sum()   # 64 MiB allocated and freed
    return (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0) / 5


print(faults_per_64mib(), H.environment(torch.device('cpu'))['malloc'])
H.set_malloc('cached')
print(faults_per_64mib(), H.environment(torch.device('cpu'))['malloc'])
try:
    H.set_malloc('glibc')
except H.DeployUsageError as e:
    print('refused:', e)
'''


@pytest.mark.skipif(not sys.platform.startswith('linux'), reason='glibc')
def test_malloc_cached_stops_the_page_faults_of_every_forward():
    """--malloc cached: a large tensor allocated again reuses the pages
    (glibc as is maps a fresh 64 MiB block every time: 16k page faults);
    the mode is recorded, an unknown one refused, and it is one-way. Both
    measured in a fresh process: in the test process, glibc's dynamic
    mmap threshold (raised by what earlier tests freed) can already serve
    the block from the heap."""
    r = subprocess.run([sys.executable, '-c', _FAULTS],
                       capture_output=True, text=True, check=True)
    glibc, cached, refusal = r.stdout.strip().split('\n')[-3:]
    faults, mode = glibc.split()
    assert float(faults) > 8000 and mode == 'glibc'
    faults, mode = cached.split()
    assert float(faults) < 100 and mode == 'cached'
    assert refusal.startswith('refused:') and 'one-way' in refusal
    assert H.environment(torch.device('cpu'))['malloc'] == 'glibc'
    with pytest.raises(DeployUsageError, match='one of glibc, cached'):
        H.set_malloc('jemalloc')


def test_ort_session_without_spinning(tmp_path):
    """The timing harness's onnxruntime sessions do not busy-wait (their
    spinning threads would slow the PyTorch backend timed next)."""
    from mmseg_sctnet.deploy.onnx_runtime import ort_session
    m = torch.nn.Conv2d(3, 2, 1)
    path = str(tmp_path / 'm.onnx')
    torch.onnx.export(m, torch.randn(1, 3, 8, 8), path, dynamo=False)
    key = 'session.intra_op.allow_spinning'
    quiet = ort_session(path, 1, spinning=False).get_session_options()
    assert quiet.get_session_config_entry(key) == '0'
    default = ort_session(path, 1).get_session_options()
    with pytest.raises(RuntimeError, match='does not have'):
        default.get_session_config_entry(key)  # onnxruntime's default


def test_benchmark_model_is_the_same_in_every_run():
    """Random weights are seeded, so agreement/error figures repeat."""
    from mmseg_sctnet.benchmark.harness import MODEL_TYPES, random_model
    cfg = MODEL_TYPES['sctnet-s-seg50'][0]
    state = torch.get_rng_state()
    a, b = random_model(cfg).state_dict(), random_model(cfg).state_dict()
    c = random_model(cfg, seed=1).state_dict()
    assert torch.equal(torch.get_rng_state(), state)   # global RNG untouched
    assert a.keys() == b.keys() == c.keys()
    convs = [k for k in a if a[k].dim() == 4]   # conv weights (random init)
    assert convs
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not any(torch.equal(a[k], c[k]) for k in convs)
