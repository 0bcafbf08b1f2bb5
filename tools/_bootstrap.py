"""Make ``import mmseg_sctnet`` work from a plain clone (no install, no
PYTHONPATH): tools put the repository root on ``sys.path`` first."""
import os.path as osp
import sys

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)
