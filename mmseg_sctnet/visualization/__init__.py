"""Pictures the tools write: the legend strip and the side-by-side
visualizer of ``tools/test.py --show-dir``."""
from .legend import (add_legend, classes_by_area, draw_legend,
                     legend_cell_width, legend_height)
from .side_by_side import SideBySideSegVisualizer

__all__ = [
    'SideBySideSegVisualizer', 'add_legend', 'classes_by_area',
    'draw_legend', 'legend_cell_width', 'legend_height'
]
