"""``IoUMetric`` that keeps its per-class values (``tools/test.py
--metrics-json``)."""
from typing import Dict, Optional

import numpy as np
from mmseg.evaluation import IoUMetric
from mmseg.registry import METRICS


@METRICS.register_module()
class PerClassIoUMetric(IoUMetric):
    """MMSegmentation's ``IoUMetric``; the per-class table it logs is also
    kept in :attr:`per_class` (``{class: {'IoU': %, 'Acc': %, ...}}``,
    ``None`` for a class absent from ground truth and prediction).

    ``tools/test.py`` uses it in place of the config's ``IoUMetric`` (same
    arguments, same returned metrics) to write the per-class values to
    ``--metrics-json``.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.per_class: Optional[Dict[str, dict]] = None

    def compute_metrics(self, results: list) -> Dict[str, float]:
        metrics = super().compute_metrics(results)
        if self.format_only or not results:
            return metrics
        areas = [sum(x) for x in zip(*results)]
        ret = self.total_area_to_metrics(*areas, self.metrics,
                                         self.nan_to_num, self.beta)
        ret.pop('aAcc', None)
        self.per_class = {
            name: {
                k: (None if np.isnan(float(v[i])) else round(
                    float(v[i]) * 100, 2))
                for k, v in ret.items()
            }
            for i, name in enumerate(self.dataset_meta['classes'])
        }
        return metrics
