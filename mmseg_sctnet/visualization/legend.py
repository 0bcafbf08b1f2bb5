"""The legend strip under every picture the tools write.

One renderer for ``tools/test.py --show-dir``
(:class:`SideBySideSegVisualizer`) and ``tools/inference.py``
(:class:`~mmseg_sctnet.apis.SCTNetInferencer`):
a dark strip of cells, one per class shown (largest area first), each a
palette swatch and the class name. Images are RGB ``[H, W, 3]`` uint8.
"""
from typing import Optional, Sequence

import cv2
import numpy as np

FONT = cv2.FONT_HERSHEY_SIMPLEX
FONT_SCALE = 0.4
ROW_H = 18  # pixels per legend row
SWATCH = 12  # side of a colour swatch
PAD = 4
BACKGROUND = 32  # grey level of the strip


def classes_by_area(*label_maps: np.ndarray, num_classes: int) -> list:
    """Class ids present in ``label_maps``, largest total area first.

    Ids ``>= num_classes`` (the ignore index 255) are left out.
    """
    counts = np.zeros(num_classes, np.int64)
    for label in label_maps:
        ids, n = np.unique(np.asarray(label), return_counts=True)
        keep = (ids >= 0) & (ids < num_classes)
        counts[ids[keep].astype(np.int64)] += n[keep]
    present = np.flatnonzero(counts)
    return [int(i) for i in present[np.argsort(-counts[present],
                                               kind='stable')]]


def legend_cell_width(names: Sequence[str]) -> int:
    """Width of one legend cell that fits the longest of ``names``."""
    text = max((cv2.getTextSize(str(n), FONT, FONT_SCALE, 1)[0][0]
                for n in names),
               default=0)
    return SWATCH + 3 * PAD + text


def legend_height(rows: int) -> int:
    return rows * ROW_H + PAD


def draw_legend(ids: Sequence[int],
                classes: Sequence[str],
                palette: Sequence[Sequence[int]],
                width: int,
                cell_width: Optional[int] = None,
                rows: Optional[int] = None) -> np.ndarray:
    """An RGB legend strip ``width`` pixels wide naming ``ids`` in order.

    Args:
        ids: class indices to list (e.g. :func:`classes_by_area`).
        classes, palette: the dataset meta (names and RGB colours).
        width: strip width; cells fill it in a grid, row by row.
        cell_width: width of every cell (default: fits the names shown).
        rows: fixed number of rows (videos keep every frame the same size);
            when not every class fits, the last cell says ``+N more``.
    """
    names = [str(classes[i]) for i in ids]
    cell_width = cell_width or legend_cell_width(names or ['-'])
    cols = max(1, width // cell_width)
    if rows is None:
        rows = max(1, -(-len(ids) // cols))
    entries = [(str(classes[i]), palette[i]) for i in ids]
    capacity = rows * cols
    if len(entries) > capacity:
        hidden = len(entries) - capacity + 1
        entries = entries[:capacity - 1] + [(f'+{hidden} more', None)]
    strip = np.full((legend_height(rows), width, 3), BACKGROUND, np.uint8)
    for k, (name, colour) in enumerate(entries):
        r, c = divmod(k, cols)
        x, y = c * cell_width + PAD, r * ROW_H + PAD
        if colour is not None:
            corner = (x + SWATCH, y + 1 + SWATCH)
            cv2.rectangle(strip, (x, y + 1), corner,
                          tuple(int(v) for v in colour), -1)
            cv2.rectangle(strip, (x, y + 1), corner, (255, 255, 255), 1)
        cv2.putText(strip, name, (x + SWATCH + PAD, y + SWATCH - 1), FONT,
                    FONT_SCALE, (255, 255, 255), 1, cv2.LINE_AA)
    return strip


def add_legend(image: np.ndarray,
               ids: Sequence[int],
               classes: Sequence[str],
               palette: Sequence[Sequence[int]],
               width: Optional[int] = None,
               cell_width: Optional[int] = None,
               rows: Optional[int] = None) -> np.ndarray:
    """``image`` (RGB) with the legend strip of ``ids`` below it.

    The result is ``max(W, width, cell_width)`` wide; the image sits in its
    top-left corner (black to its right when the legend is wider).
    """
    h, w = image.shape[:2]
    names = [str(classes[i]) for i in ids]
    cell_width = cell_width or legend_cell_width(names or ['-'])
    width = max(w, width or 0, cell_width)
    legend = draw_legend(ids, classes, palette, width, cell_width, rows)
    canvas = np.zeros((h + legend.shape[0], width, 3), np.uint8)
    canvas[:h, :w] = image
    canvas[h:] = legend
    return canvas
