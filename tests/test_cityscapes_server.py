"""The Cityscapes test server: ``tools/test.py --format-only`` and training
on train + val.

On generated data in the real layout with a test split that has no label
file at all, ``tools/test.py CONFIG CKPT --format-only --out DIR`` must
write one PNG per test image, named ``<city>_<seq>_<frame>_leftImg8bit.png``
and found by cityscapesscripts' own lookup (``getPrediction``), holding the
Cityscapes label id of the class the model predicts (independent
prediction with ``mmseg.apis.inference_model``, mapped with the label table
written out below); cityscapesscripts' own evaluation reading those files
against label-id ground truth made from the same predictions scores 100%.
The train + val leaf builds a ConcatDataset of both splits and trains.
"""
import copy
import glob
import os
import os.path as osp

import numpy as np
import pytest
import torch
from helpers.configs import TRAINVAL
from helpers.models import CITY_CONFIG, ROOT, build_cfg_model, randomize_state
from helpers.tools import load_tool
from mmengine.config import Config
from PIL import Image

from mmseg_sctnet.datasets import make_cityscapes

#: Cityscapes trainId -> labelId (cityscapesscripts/helpers/labels.py):
#: road 7, sidewalk 8, building 11, wall 12, fence 13, pole 17, traffic
#: light 19, traffic sign 20, vegetation 21, terrain 22, sky 23, person 24,
#: rider 25, car 26, truck 27, bus 28, train 31, motorcycle 32, bicycle 33
LABEL_ID = [7, 8, 11, 12, 13, 17, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28,
            31, 32, 33]
SIZE = (64, 128)  # (h, w)
SMALL_TEST = ['test_dataloader.dataset.pipeline.1.scale=(128,64)',
              'test_dataloader.num_workers=0',
              'test_dataloader.persistent_workers=False']


@pytest.fixture(scope='module')
def setup(tmp_path_factory):
    d = tmp_path_factory.mktemp('city_server')
    data = make_cityscapes(str(d / 'data'), n_train=1, n_val=1, size=SIZE,
                           n_test=4, seed=5)
    model = build_cfg_model(CITY_CONFIG['S'], train=False)
    state = randomize_state(model.state_dict(), seed=4)
    ckpt = str(d / 'model.pth')
    torch.save(dict(state_dict=state, meta=dict()), ckpt)
    return dict(root=d, data=data, ckpt=ckpt)


def test_generated_test_split_has_no_labels(setup):
    data = setup['data']
    imgs = glob.glob(osp.join(data, 'leftImg8bit', 'test', '*', '*.png'))
    assert len(imgs) == 4
    assert not osp.exists(osp.join(data, 'gtFine', 'test'))


def test_format_only_writes_label_ids_named_for_the_server(setup, tmp_path):
    import cityscapesscripts.evaluation.evalPixelLevelSemanticLabeling as CSE
    from mmseg.apis import inference_model, init_model
    data, ckpt = setup['data'], setup['ckpt']
    out = str(tmp_path / 'results')
    before = {p: open(p, 'rb').read() for p in glob.glob(
        osp.join(data, '**', '*.png'), recursive=True)}
    result = load_tool('test').main([
        CITY_CONFIG['S'], ckpt, '--format-only', '--out', out,
        '--work-dir', str(tmp_path / 'work'), '--cfg-options',
        f'test_dataloader.dataset.data_root={data}'] + SMALL_TEST)
    assert result['metrics'] == {}
    # inputs intact, nothing written next to them
    assert {p: open(p, 'rb').read() for p in glob.glob(
        osp.join(data, '**', '*.png'), recursive=True)} == before

    images = sorted(glob.glob(osp.join(data, 'leftImg8bit', 'test', '*',
                                       '*_leftImg8bit.png')))
    assert sorted(os.listdir(out)) == sorted(osp.basename(p)
                                             for p in images)
    model = init_model(CITY_CONFIG['S'], ckpt, device='cpu', cfg_options={
        'test_pipeline.1.scale': (128, 64), 'model.backbone.init_cfg': None})
    args = copy.copy(CSE.args)  # the official evaluation's own lookup
    args.predictionPath, args.predictionWalk = out, None
    seen = set()
    preds, gts = [], []
    for img in images:
        city, seq, frame = osp.basename(img).split('_')[:3]
        gt_name = f'{city}_{seq}_{frame}_gtFine_labelIds.png'
        found = CSE.getPrediction(args, gt_name)
        assert found == osp.join(out, osp.basename(img))
        train_ids = inference_model(model, img).pred_sem_seg.data[0].numpy()
        written = np.array(Image.open(found))
        assert written.shape == SIZE
        expected = np.array(LABEL_ID, np.uint8)[train_ids]
        np.testing.assert_array_equal(written, expected)
        # whatever the PNG mode, every reader gets the label id
        np.testing.assert_array_equal(
            np.array(Image.open(found).convert('L')), expected)
        seen |= set(np.unique(train_ids).tolist())
        gt = str(tmp_path / 'gt' / gt_name)
        os.makedirs(osp.dirname(gt), exist_ok=True)
        Image.fromarray(expected).save(gt)
        preds.append(found)
        gts.append(gt)
    assert len(seen) >= 3, seen  # several classes went through the table
    # cityscapesscripts' evaluation reads the files as the label ids meant
    args.evalInstLevelScore = False
    args.JSONOutput = False
    args.quiet = True
    res = CSE.evaluateImgLists(preds, gts, args)
    scores = {k: v for k, v in res['classScores'].items()
              if not np.isnan(v)}
    names = {CSE.id2label[i].name for i in LABEL_ID
             if i in {LABEL_ID[t] for t in seen}}
    assert names <= set(scores)
    assert all(scores[n] == pytest.approx(1.0) for n in names)


def test_format_only_with_tta_needs_no_labels(setup, tmp_path):
    out = str(tmp_path / 'results')
    load_tool('test').main([
        CITY_CONFIG['S'], setup['ckpt'], '--format-only', '--tta', '--out',
        out, '--work-dir', str(tmp_path / 'work'), '--cfg-options',
        f'test_dataloader.dataset.data_root={setup["data"]}',
        '+img_ratios=[0.5,1.0]'] + SMALL_TEST)
    assert len(os.listdir(out)) == 4


@pytest.mark.parametrize('config', TRAINVAL,
                         ids=lambda p: osp.relpath(p, ROOT))
def test_trainval_leaf_trains_on_both_splits(config, setup, tmp_path):
    """The leaf equals its official base but for the training set, a
    ConcatDataset of train and val read with the base's train pipeline;
    one iteration of tools/train.py runs on it (small crops, no SIAM)."""
    cfg = Config.fromfile(config)
    base = Config.fromfile(config.replace('-trainval', ''))
    assert [k for k in set(cfg) | set(base)
            if cfg.get(k) != base.get(k)] == ['train_dataloader']
    ds = cfg.train_dataloader.dataset
    assert ds.type == 'ConcatDataset'
    assert [d.data_prefix for d in ds.datasets] == [
        dict(img_path='leftImg8bit/train', seg_map_path='gtFine/train'),
        dict(img_path='leftImg8bit/val', seg_map_path='gtFine/val')]
    for d in ds.datasets:
        assert d.type == base.train_dataloader.dataset.type
        assert d.pipeline == base.train_dataloader.dataset.pipeline

    data = setup['data']
    opts = ['model.backbone.init_cfg=None', 'model.use_siam=False',
            'train_cfg.max_iters=1', 'train_cfg.val_interval=1000',
            'default_hooks.checkpoint.interval=1',
            'train_dataloader.batch_size=2', 'train_dataloader.num_workers=0',
            'train_dataloader.persistent_workers=False',
            'model.data_preprocessor.size=(64,64)', 'val_dataloader=None',
            'val_cfg=None', 'val_evaluator=None']
    for i in (0, 1):
        p = f'train_dataloader.dataset.datasets.{i}'
        opts += [f'{p}.data_root={data}',
                 f'{p}.pipeline.2.scale=(128,64)',
                 f'{p}.pipeline.3.crop_size=(64,64)']
    runner = load_tool('train').main(
        [config, '--work-dir', str(tmp_path / 'work'), '--cfg-options'] +
        opts)
    dataset = runner.train_dataloader.dataset
    assert len(dataset) == 2  # one train and one val image
    assert {osp.basename(osp.dirname(osp.dirname(dataset.get_data_info(i)[
        'img_path']))) for i in range(2)} == {'train', 'val'}
    assert osp.isfile(str(tmp_path / 'work' / 'iter_1.pth'))
