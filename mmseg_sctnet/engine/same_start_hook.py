"""``SameStartHook``: the runs of one seed start alike, and it is checked.

A paired comparison (with and without SIAM, or two loss weightings) is
only paired if both runs of a seed start from the same student tensors,
see the same batches and draw the same random numbers in their first
iteration. The hook makes that so and records digests of it; the
experiments (:mod:`mmseg_sctnet.experiments.ablation`) stop when the two
runs of a seed disagree.
"""
import hashlib

from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.runner import set_random_seed
from mmseg.registry import HOOKS

__all__ = [
    'SameStartHook', 'STUDENT_PREFIXES', 'CE_TERMS', 'is_ce_term',
    'student_keys'
]

#: the student's own tensors of an SCTNet segmentor (everything but the
#: SIAM head), for a model that does not name its SIAM head's prefixes
STUDENT_PREFIXES = ('backbone.', 'decode_head.', 'auxiliary_head.0.')
#: the CE terms of SCTNet's decode and auxiliary heads as logged
CE_TERMS = ('decode.loss_ce', 'aux_0.loss_ce')


def is_ce_term(key: str) -> bool:
    """A logged loss term of the student's own heads (not the total
    ``loss``, not a SIAM term): ``decode.loss_ce``, ``aux_0.loss_ce`` of
    SCTNet, ``decode.loss_context`` of DDRNet, ``decode.loss_bd`` of
    PIDNet, ..."""
    return 'loss' in key and key != 'loss' and not key.startswith('siam.')


def student_keys(model, state) -> list:
    """The state-dict keys of the student in ``model``: all but those of
    its SIAM heads (``model.siam_prefixes``), else
    :data:`STUDENT_PREFIXES`."""
    siam = getattr(model, 'siam_prefixes', None)
    if siam is None:
        return sorted(k for k in state if k.startswith(STUDENT_PREFIXES))
    return sorted(k for k in state if not k.startswith(tuple(siam)))


def _sha(tensors) -> str:
    h = hashlib.sha256()
    for t in tensors:
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


@HOOKS.register_module()
class SameStartHook(Hook):
    """Gives the runs of one seed the same start and records it.

    * ``before_run`` (just before the Runner initialises the weights):
      ``set_random_seed(seed)``, so the student's modules, which come
      before the SIAM head, are initialised from the same random state
      with and without SIAM;
    * ``before_train`` (after the initialisation and any pretrained
      loading): records ``init_sha256`` over the student's tensors
      (:func:`student_keys`) and re-seeds, so the first iteration's
      random draws (DropPath) are the same too;
    * ``after_train_iter`` of iteration 1: records ``batch_sha256`` (images
      and labels of the first batch) and the CE losses of that iteration.

    What it recorded is in :attr:`record`.
    """
    priority = 'VERY_HIGH'

    def __init__(self, seed: int):
        self.seed = seed
        self.record: dict = {}

    def before_run(self, runner) -> None:
        set_random_seed(self.seed)

    def before_train(self, runner) -> None:
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        state = model.state_dict()
        keys = student_keys(model, state)
        self.record['init_sha256'] = _sha(state[k] for k in keys)
        self.record['init_tensors'] = len(keys)
        set_random_seed(self.seed)

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None) -> None:
        if 'batch_sha256' in self.record:  # the first iteration only
            return
        tensors = list(data_batch['inputs'])
        tensors += [s.gt_sem_seg.data for s in data_batch['data_samples']]
        self.record['batch_sha256'] = _sha(tensors)
        self.record['iter1_ce'] = {
            k: float(outputs[k].detach()) if hasattr(outputs[k], 'detach')
            else float(outputs[k])
            for k in sorted(outputs or {}) if is_ce_term(k)
        }
