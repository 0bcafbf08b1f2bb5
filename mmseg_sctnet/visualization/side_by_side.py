"""``input | ground truth | prediction`` pictures for ``tools/test.py
--show-dir``."""
import os
import os.path as osp
from typing import List, Optional

import cv2
import numpy as np
from mmseg.registry import VISUALIZERS
from mmseg.visualization import SegLocalVisualizer

from .legend import add_legend, classes_by_area


@VISUALIZERS.register_module()
class SideBySideSegVisualizer(SegLocalVisualizer):
    """Writes one ``input | ground truth | prediction`` PNG per image.

    Built on :class:`mmseg.visualization.SegLocalVisualizer`: the overlays
    are its ``_draw_sem_seg`` (dataset palette, ``alpha`` blending, ignored
    pixels left uncoloured); the legend strip below names the classes shown
    (:func:`~mmseg_sctnet.visualization.add_legend`). Used through
    MMSegmentation's ``SegVisualizationHook`` (``draw=True``), which reads
    each test image and calls :meth:`add_datasample`.

    Args:
        out_dir (str): folder for the PNGs, one per image, named after the
            image file (``<stem>.png``).
        Other arguments as :class:`SegLocalVisualizer`.
    """

    def __init__(self, out_dir: str, name: str = 'side_by_side', **kwargs):
        super().__init__(name=name, **kwargs)
        self.out_dir = out_dir
        os.makedirs(out_dir, exist_ok=True)
        self.written: List[str] = []

    def add_datasample(self,
                       name: str,
                       image: np.ndarray,
                       data_sample=None,
                       draw_gt: bool = True,
                       draw_pred: bool = True,
                       show: bool = False,
                       wait_time: float = 0,
                       out_file: Optional[str] = None,
                       step: int = 0,
                       with_labels: Optional[bool] = False) -> None:
        """Compose and write one PNG. ``image`` is RGB ``[H, W, 3]``."""
        classes = self.dataset_meta.get('classes')
        palette = self.dataset_meta.get('palette')
        panels, maps = [image], []
        for key, wanted in (('gt_sem_seg', draw_gt), ('pred_sem_seg',
                                                      draw_pred)):
            if not wanted or data_sample is None or key not in data_sample:
                continue
            seg = data_sample.get(key)
            panels.append(
                self._draw_sem_seg(image, seg, classes, palette, False))
            maps.append(seg.cpu().data.numpy())
        sep = np.full((image.shape[0], 4, 3), 255, np.uint8)
        row = [panels[0]]
        for p in panels[1:]:
            row += [sep, p]
        drawn = add_legend(
            np.concatenate(row, axis=1),
            classes_by_area(*maps, num_classes=len(classes)), classes,
            palette)
        if out_file is None:
            stem = osp.splitext(name.split('_', 1)[-1] if name.startswith(
                ('test_', 'val_')) else name)[0]
            out_file = osp.join(self.out_dir, stem + '.png')
        cv2.imwrite(out_file, cv2.cvtColor(drawn, cv2.COLOR_RGB2BGR))
        self.written.append(out_file)
