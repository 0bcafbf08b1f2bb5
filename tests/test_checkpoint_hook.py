"""AtomicCheckpointHook: the config-named crash-safe checkpoint hook.

Real MMEngine runners on the 2-parameter toy model (tests/
helpers/reliability.py). A failure of ``os.replace`` stands for a kill at
that moment: what is on disk afterwards is what a killed run leaves.
"""
import hashlib
import os

import pytest
import torch
from helpers.reliability import toy_runner

from mmseg_sctnet.io import atomic as atomic_io
from mmseg_sctnet.io.checkpoint import safe_torch_load
from mmseg_sctnet.engine import AtomicCheckpointHook


def _hooks(**checkpoint):
    return dict(
        checkpoint=dict(
            type='AtomicCheckpointHook',
            interval=1,
            by_epoch=False,
            **checkpoint),
        logger=dict(type='LoggerHook', interval=1))


def _pths(folder):
    return sorted(f for f in os.listdir(folder) if f.endswith('.pth'))


def test_configs_name_the_atomic_hook():
    from mmengine.config import Config
    from helpers.reliability import BASE_CONFIG
    cfg = Config.fromfile(BASE_CONFIG)
    assert cfg.default_hooks.checkpoint.type == 'AtomicCheckpointHook'


def test_killed_pointer_write_keeps_old_pointer_and_checkpoint(
        tmp_path, monkeypatch):
    """max_keep_ckpts=1: iteration 2's save is 'killed' while the pointer is
    renamed into place. iter_2.pth is complete, last_checkpoint still names
    iter_1.pth, and iter_1.pth (which MMEngine would already have deleted)
    is still there. Without the kill the old one goes after the save."""
    removed_when = []
    orig_remove = atomic_io.AtomicLocalBackend.remove

    def remove(self, path):
        # the new checkpoint and the pointer naming it exist already
        folder = os.path.dirname(path)
        with open(os.path.join(folder, 'last_checkpoint')) as f:
            pointer = f.read()
        removed_when.append(
            (os.path.basename(path), os.path.basename(pointer), _pths(folder)))
        orig_remove(self, path)

    monkeypatch.setattr(atomic_io.AtomicLocalBackend, 'remove', remove)
    runner = toy_runner(
        tmp_path, max_iters=3, default_hooks=_hooks(max_keep_ckpts=1))
    orig_replace = os.replace

    def replace(src, dst):
        if dst.endswith('last_checkpoint') and runner.iter + 1 == 2:
            raise KeyboardInterrupt('killed')
        orig_replace(src, dst)

    monkeypatch.setattr(atomic_io.os, 'replace', replace)
    with pytest.raises(KeyboardInterrupt):
        runner.train()
    assert _pths(tmp_path) == ['iter_1.pth', 'iter_2.pth']
    assert (tmp_path / 'last_checkpoint').read_text() == str(tmp_path /
                                                             'iter_1.pth')
    assert not [f for f in os.listdir(tmp_path) if 'sctnet-tmp' in f]
    assert safe_torch_load(str(tmp_path / 'iter_2.pth'))['meta']['iter'] == 2
    hook = [h for h in runner.hooks if isinstance(h, AtomicCheckpointHook)]
    assert type(hook[0].file_backend) is atomic_io.AtomicLocalBackend
    assert removed_when == []

    monkeypatch.setattr(atomic_io.os, 'replace', orig_replace)
    toy_runner(
        tmp_path / 'b', max_iters=2,
        default_hooks=_hooks(max_keep_ckpts=1)).train()
    assert removed_when == [('iter_1.pth', 'iter_2.pth',
                             ['iter_1.pth', 'iter_2.pth'])]
    assert _pths(tmp_path / 'b') == ['iter_2.pth']


def test_previous_best_is_deleted_after_the_new_best(tmp_path, monkeypatch):
    runner = toy_runner(
        tmp_path,
        max_iters=1,
        default_hooks=_hooks(save_best='acc', rule='greater'))
    runner.train()
    hook = next(h for h in runner.hooks if isinstance(h, AtomicCheckpointHook))
    hook._save_best_checkpoint(runner, dict(acc=0.5))
    assert 'best_acc_iter_1.pth' in _pths(tmp_path)

    seen = []
    orig_remove = atomic_io.AtomicLocalBackend.remove

    def remove(self, path):
        seen.append((os.path.basename(path), _pths(tmp_path)))
        orig_remove(self, path)

    monkeypatch.setattr(atomic_io.AtomicLocalBackend, 'remove', remove)
    runner.train_loop._iter = 2  # validation at a later iteration
    hook._save_best_checkpoint(runner, dict(acc=0.7))
    assert seen == [('best_acc_iter_1.pth', [
        'best_acc_iter_1.pth', 'best_acc_iter_2.pth', 'iter_1.pth',
        'iter_2.pth'
    ])]
    # a better score at the same iteration: same file name, not deleted
    hook._save_best_checkpoint(runner, dict(acc=0.9))
    assert 'best_acc_iter_2.pth' in _pths(tmp_path)
    assert safe_torch_load(str(tmp_path / 'best_acc_iter_2.pth'))

    orig_replace = os.replace

    def replace(src, dst):
        if 'best_acc_iter_3' in dst:
            raise KeyboardInterrupt('killed')
        orig_replace(src, dst)

    monkeypatch.setattr(atomic_io.os, 'replace', replace)
    runner.train_loop._iter = 3
    with pytest.raises(KeyboardInterrupt):
        hook._save_best_checkpoint(runner, dict(acc=0.95))
    assert [f for f in _pths(tmp_path)
            if f.startswith('best')] == ['best_acc_iter_2.pth']


def test_published_checkpoint_is_named_after_its_own_sha256(tmp_path):
    runner = toy_runner(
        tmp_path,
        max_iters=2,
        default_hooks=_hooks(published_keys=['meta', 'state_dict']))
    runner.train()
    pub = [f for f in _pths(tmp_path) if f.startswith('iter_2-')]
    assert len(pub) == 1, _pths(tmp_path)
    data = (tmp_path / pub[0]).read_bytes()
    assert pub[0] == f'iter_2-{hashlib.sha256(data).hexdigest()[:8]}.pth'
    ckpt = safe_torch_load(str(tmp_path / pub[0]))
    assert set(ckpt) == {'meta', 'state_dict'}
    torch.testing.assert_close(ckpt['state_dict']['linear.weight'],
                               runner.model.linear.weight.detach())


def test_backend_choice():
    """Local folders get the atomic backend; a storage backend named in
    backend_args (or a scheme:// out_dir) is used as given."""
    choose = AtomicCheckpointHook._backend_args_for
    assert choose('/w', None) == dict(backend='atomic_local')
    assert choose('/w', dict(backend='local')) == dict(backend='atomic_local')
    assert choose('s3://bucket/ckpt', None) is None
    petrel = dict(backend='petrel', path_mapping=None)
    assert choose('/w', petrel) is petrel


def test_resume_with_another_world_size_is_seeded_repeatably():
    """RNG states of 2 processes cannot continue in 1 (or the reverse):
    each rank is seeded with seed + 1009 * iteration + rank, with a
    warning; a checkpoint of the previous format (one state) still
    resumes exactly in one process."""
    import random

    import numpy as np
    from mmseg_sctnet.engine import ExactResumeHook

    class Runner:
        world_size, rank, seed, iter = 1, 0, 3, 4

    hook = ExactResumeHook()
    state = hook.capture()
    hook._loaded = dict(world_size=2, ranks=[state, state])
    assert hook._state_to_resume(Runner) == dict(reseed=3 + 1009 * 4)
    draws = []
    for _ in range(2):
        hook.restore(hook._state_to_resume(Runner))
        draws.append((random.random(), np.random.rand(), torch.rand(1)))
    assert draws[0] == draws[1]  # repeatable
    hook._loaded = state  # previous format: the state itself
    assert hook._state_to_resume(Runner) is state
    Runner.world_size, Runner.rank = 2, 1
    hook._loaded = dict(world_size=2, ranks=[state])  # rank 0's only
    assert hook._state_to_resume(Runner) == dict(reseed=3 + 1009 * 4 + 1)
