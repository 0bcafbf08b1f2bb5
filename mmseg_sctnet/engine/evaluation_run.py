"""An evaluation run from a config and a checkpoint or ONNX file
(MMEngine's Runner, as MMSegmentation's ``tools/test.py``), with the
checks that come first: the pieces of ``tools/test.py``
(:func:`mmseg_sctnet.apis.test.test`) that the demo reuses.

Before the dataset is read: the config and its ``--cfg-options`` keys, the
checkpoint (readable, a checkpoint), every output path (creatable, none of
the inputs, ``--out``/``--show-dir`` not inside the data folder and not the
same folder) and the data folders. A checkpoint of another model or class
count fails when MMEngine loads it, before the first test image.

``--format-only`` (:func:`use_cityscapes_server_format`) writes the
predictions of the Cityscapes test split as the evaluation server takes
them, with MMSegmentation's ``CityscapesMetric(format_only=True)``.
"""
import copy
import os.path as osp
from typing import Callable, Optional, Sequence

from mmengine.config import Config
from mmseg.datasets import CityscapesDataset
from mmseg.registry import DATASETS

from ..datasets.checker import check_data_paths
from ..datasets.tta import TTA_RATIOS
from ..deploy.onnx_runtime import onnx_io
from ..deploy.ort_segmentor import is_onnx_path, onnx_model_config
from ..io.checkpoint import read_checkpoint
from ..io.config import explain_build_errors, load_config, strip_pretrained
from ..io.errors import ConfigError, OnnxModelError, PathError
from ..io.files import (check_config_dump, check_output_file,
                        check_output_folder, same_file)
from .distributed import adapt_to_cpu_distributed
from .runner import build_runner, make_run_names_unique

__all__ = [
    'SUPPORTED_EVAL', 'TTA_RATIOS', 'tta_pipeline', 'build_test_config',
    'set_test_model', 'use_cityscapes_server_format', 'run_test'
]

SUPPORTED_EVAL = ('mIoU', 'mDice', 'mFscore')


def set_test_model(cfg: Config, checkpoint: str) -> None:
    """Make ``cfg`` evaluate ``checkpoint`` (in place).

    The one place that decides what runs the test images; data, metrics,
    ``--show-dir`` and ``--out`` are the same for every kind of file:

    * an ONNX file (``tools/export_onnx.py``): ``cfg.model`` becomes an
      ``ORTSegmentor`` that runs it with onnxruntime
      (:func:`mmseg_sctnet.deploy.ort_segmentor.onnx_model_config`, which
      checks the file first), nothing is loaded;
    * a PyTorch checkpoint (``.pth``): read once here (a damaged file fails
      before anything is built), then loaded into the config's segmentor
      built for inference: ``train_cfg=None`` (no teacher, no SIAM
      projections), no pretrained-backbone file.
    """
    cfg.resume = False
    if is_onnx_path(checkpoint):
        onnx_model_config(cfg, checkpoint)
        return
    read_checkpoint(checkpoint)
    cfg.model.train_cfg = None
    strip_pretrained(cfg.model)
    cfg.load_from = checkpoint


def _data_roots(cfg: Config) -> list:
    ds = (cfg.get('test_dataloader') or {}).get('dataset') or {}
    leaves = ds.get('datasets') or [ds]  # ConcatDataset
    return [d['data_root'] for d in leaves
            if isinstance(d, dict) and d.get('data_root')]


def _check_outputs(cfg: Config, config: str, checkpoint: str,
                   out: Optional[str], show_dir: Optional[str],
                   metrics_json: Optional[str]) -> None:
    inputs = [config, checkpoint]
    data = _data_roots(cfg)
    check_output_folder(cfg.work_dir, '--work-dir', inputs)
    check_config_dump(cfg.work_dir, config)
    # label maps and pictures are named after the images: never in the
    # data folder, never in one folder
    check_output_folder(out, '--out', inputs + data)
    check_output_folder(show_dir, '--show-dir', inputs + data)
    if out and show_dir and same_file(out, show_dir):
        raise PathError(
            f'--out and --show-dir are the same folder ({out}); both write '
            '<image name>.png. Give them different folders.')
    if metrics_json:
        check_output_file(metrics_json, inputs, overwrite=True,
                          what='--metrics-json')


def _use_per_class_metric(cfg: Config) -> None:
    """``IoUMetric`` -> ``PerClassIoUMetric`` (same arguments and results;
    keeps the per-class values for ``--metrics-json``)."""
    evaluators = cfg.test_evaluator if isinstance(
        cfg.test_evaluator, (list, tuple)) else [cfg.test_evaluator]
    for ev in evaluators:
        if isinstance(ev, dict) and ev.get('type') == 'IoUMetric':
            ev['type'] = 'PerClassIoUMetric'


def tta_pipeline(cfg: Config) -> list:
    """The test pipeline of ``tools/test.py --tta`` for ``cfg``.

    The config's own ``tta_pipeline`` when it sets one (the shipped dataset
    bases carry exactly what this function builds, so MMSegmentation's own
    ``test.py --tta``, which reads ``tta_pipeline`` as it is, runs the same
    TTA); with ``tta_pipeline = None``, MMSegmentation's multi-scale + flip
    TTA built around the config's test pipeline
    (:class:`~mmseg_sctnet.datasets.tta.ScaleFlipTTA`): its ``Resize``
    repeated at ``img_ratios`` (default :data:`TTA_RATIOS`) of its scale,
    both horizontal flips, then the transforms that follow the Resize
    (MMSegmentation's own bases scale the original image, which is not the
    SCTNet test size).

    Raises:
        ConfigError: no ``tta_pipeline`` and no Resize with a ``scale`` in
            the test pipeline.
    """
    if cfg.get('tta_pipeline'):
        return cfg.tta_pipeline
    pipe = copy.deepcopy(list(cfg.test_dataloader.dataset.get('pipeline')
                              or cfg.get('test_pipeline') or []))
    at = next((i for i, t in enumerate(pipe)
               if t.get('type') == 'Resize' and t.get('scale')), None)
    if at is None:
        raise ConfigError(
            f'--tta: the test pipeline of {cfg.filename} has no Resize with '
            'a scale to build the multi-scale test from; set tta_pipeline '
            "in the config (as in MMSegmentation's dataset configs)")
    return pipe[:at] + [
        dict(type='ScaleFlipTTA', resize=pipe[at],
             img_ratios=list(cfg.get('img_ratios') or TTA_RATIOS),
             then=pipe[at + 1:])
    ]


def _check_onnx_for_tta(cfg: Config, checkpoint: str) -> None:
    """Refuse ``--tta`` with a static-shape ONNX file: each TTA scale would
    be fitted back to the file's one input size, so the multi-scale part
    would silently do nothing (measured: 90.64 instead of the .pth's
    95.44 mIoU on the demo student; a ``--dynamic`` export gives 95.44)."""
    if cfg.model.get('type') != 'ORTSegmentor':
        return
    shape = onnx_io(checkpoint)['input_shape']
    if all(isinstance(d, int) for d in shape[2:]):
        raise OnnxModelError(
            f'--tta with {checkpoint}: the file has a static input size '
            f'{shape[2]}x{shape[3]}, so every scale of the multi-scale test '
            'would be fitted back to it; export one with --dynamic '
            '(tools/export_onnx.py CONFIG CKPT --shape H W --dynamic) or '
            'test without --tta')


#: what ``--format-only`` reads: the Cityscapes test split (no labels)
CITYSCAPES_TEST_IMAGES = 'leftImg8bit/test'


def _without_annotations(pipeline: list) -> list:
    """``pipeline`` without ``LoadAnnotations`` (also inside a
    ``ScaleFlipTTA``'s ``then`` or a ``TestTimeAug``'s transform lists): the
    test split has no labels."""

    def keep(ts):
        return [t for t in ts if t.get('type') != 'LoadAnnotations']

    out = []
    for t in keep(pipeline):
        if t.get('type') == 'ScaleFlipTTA':
            t = dict(t, then=keep(t.get('then', [])))
        elif t.get('type') == 'TestTimeAug':
            t = dict(t, transforms=[
                keep(stage) for stage in t['transforms'] if keep(stage)])
        out.append(t)
    return out


def use_cityscapes_server_format(cfg: Config, out: str) -> None:
    """Make ``cfg``'s test run write the Cityscapes test-server files to
    ``out`` instead of evaluating (in place; ``--format-only``).

    * The images are ``leftImg8bit/test`` under the test dataset's
      ``data_root``; no label is read (no ``seg_map_path``, no
      ``LoadAnnotations``), so ``gtFine/test`` need not exist.
    * MMSegmentation's ``CityscapesMetric(format_only=True)`` writes one
      ``<city>_<seq>_<frame>_leftImg8bit.png`` per test image into ``out``
      (one flat folder: zip it for the server), holding Cityscapes label ids
      (``labelIds``: trainId 0 road -> 7, ..., 18 bicycle -> 33; through
      cityscapesscripts' table), not train ids.

    Raises:
        ConfigError: the test set is not the 19-class ``CityscapesDataset``
            (its prediction indices would not be Cityscapes train ids), or
            cityscapesscripts is missing.
    """
    ds = cfg.test_dataloader.dataset
    kind = ds.get('type')
    cls = DATASETS.get(kind) if isinstance(kind, str) else kind
    if 'datasets' in ds or not (isinstance(cls, type)
                                and issubclass(cls, CityscapesDataset)):
        raise ConfigError(
            f'--format-only writes the Cityscapes test-server format, but the '
            f'test dataset of {cfg.filename} is {kind!r}, not '
            'CityscapesDataset; test a Cityscapes config.')
    want = tuple(CityscapesDataset.METAINFO['classes'])
    classes = tuple((ds.get('metainfo') or {}).get('classes') or want)
    head = cfg.model.get('decode_head') or {}
    n_model = head.get('num_classes', len(want)) if isinstance(
        head, dict) else len(want)
    if classes != want or n_model != len(want):
        raise ConfigError(
            f'--format-only writes Cityscapes label ids for the 19 Cityscapes '
            f'classes in train-id order, but {cfg.filename} predicts '
            f'{n_model} classes ({len(classes)} in its dataset metainfo); '
            'use a 19-class Cityscapes config (configs/sctnet/cityscapes/).')
    try:  # optional dependency (requirements.txt): the label-id table
        import cityscapesscripts  # noqa: F401
    except ImportError:
        raise ConfigError('--format-only needs cityscapesscripts (its '
                          'label-id table): pip install cityscapesscripts'
                          ) from None
    ds.data_prefix = dict(img_path=CITYSCAPES_TEST_IMAGES)
    ds.pipeline = _without_annotations(
        list(ds.get('pipeline') or cfg.get('test_pipeline') or []))
    cfg.test_evaluator = dict(
        type='CityscapesMetric',
        output_dir=out,
        format_only=True,
        keep_results=True)


def build_test_config(config: str,
                      checkpoint: str,
                      work_dir: Optional[str] = None,
                      out: Optional[str] = None,
                      show_dir: Optional[str] = None,
                      metrics_json: Optional[str] = None,
                      eval_metrics: Optional[Sequence[str]] = None,
                      tta: bool = False,
                      cfg_options: Optional[dict] = None,
                      launcher: str = 'none',
                      format_only: bool = False) -> Config:
    """The evaluation config: the file, checked ``cfg_options``, the
    checkpoint (:func:`set_test_model`) and the output options
    (``format_only``: :func:`use_cityscapes_server_format` into ``out``)."""
    cfg = load_config(config, cfg_options)
    cfg.launcher = launcher
    if format_only:
        given = [o for o, v in (('--eval', eval_metrics),
                                ('--show-dir', show_dir),
                                ('--metrics-json', metrics_json)) if v]
        if not out:
            raise ConfigError('--format-only needs --out DIR: the folder the '
                              'Cityscapes test-server files are written to.')
        if given:
            raise ConfigError(
                f'--format-only with {", ".join(given)}: the test split has '
                'no labels, nothing is evaluated or drawn against them; drop '
                f'{", ".join(given)}.')
    if eval_metrics:
        bad = [m for m in eval_metrics if m not in SUPPORTED_EVAL]
        if bad:
            raise ConfigError(f'unsupported --eval metric(s) {bad}; use '
                              f'{", ".join(SUPPORTED_EVAL)}')
        cfg.test_evaluator['iou_metrics'] = list(eval_metrics)
    cfg.work_dir = work_dir or cfg.get('work_dir') or osp.join(
        './work_dirs',
        osp.splitext(osp.basename(config))[0])
    _check_outputs(cfg, config, checkpoint, out, show_dir, metrics_json)
    if format_only:  # checks the config's model before it is replaced
        use_cityscapes_server_format(cfg, out)
    set_test_model(cfg, checkpoint)
    if not format_only:
        _use_per_class_metric(cfg)
    if out and not format_only:
        cfg.test_evaluator['output_dir'] = out
        cfg.test_evaluator['keep_results'] = True
    if show_dir:
        hook = cfg.default_hooks.setdefault(
            'visualization', dict(type='SegVisualizationHook'))
        hook['draw'] = True
        hook['interval'] = 1
        vis = dict(cfg.get('visualizer') or {})
        vis.pop('type', None)
        vis.pop('name', None)
        vis.update(type='SideBySideSegVisualizer', out_dir=show_dir)
        cfg.visualizer = vis
    if tta:
        pipeline = tta_pipeline(cfg)
        _check_onnx_for_tta(cfg, checkpoint)
        if format_only:
            pipeline = _without_annotations(pipeline)
        cfg.test_dataloader.dataset.pipeline = pipeline
        cfg.tta_model.module = cfg.model
        cfg.model = cfg.tta_model
    adapt_to_cpu_distributed(cfg, launcher)
    make_run_names_unique(cfg)
    return cfg


def run_test(cfg: Config,
             on_runner: Optional[Callable] = None,
             runner_cls=None) -> dict:
    """Build the runner, load the checkpoint, run the test loop.

    Returns ``dict(metrics=..., per_class=..., rank=...)``;
    ``on_runner(runner)`` is called once the runner is built.
    """
    check_data_paths(cfg, splits=('test', ))
    runner = build_runner(cfg, runner_cls)
    if on_runner is not None:
        on_runner(runner)
    with explain_build_errors(cfg, cfg.filename or 'the config'):
        metrics = runner.test()
    per_class = {}
    for metric in runner.test_evaluator.metrics:
        per_class.update(getattr(metric, 'per_class', None) or {})
    return dict(
        metrics={k: round(float(v), 2)
                 for k, v in metrics.items()},
        per_class=per_class,
        rank=runner.rank)
