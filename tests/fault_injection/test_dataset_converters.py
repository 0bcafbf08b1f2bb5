"""tools/dataset_converters/*.py under bad input (docs/reliability.md).

Batch rows: a raw dataset with good annotations and one of each kind of
bad item; every bad item is named with its reason, the good ones are
converted, the run exits 1, no traceback, no input file changes.
Single rows: a wrong folder or option is one ``error:`` line.
"""
import glob
import json
import os
import os.path as osp
import signal

import bad_files as bf
import cv2
import numpy as np
import pytest

CITY = 'tools/dataset_converters/cityscapes.py'
COCO = 'tools/dataset_converters/coco_stuff10k.py'


def _rect(x0, y0, x1, y1):
    return [[x0, y0], [x1, y0], [x1, y1], [x0, y1]]


def _polygons(h=8, w=16, label='road'):
    return dict(
        imgHeight=h,
        imgWidth=w,
        objects=[dict(label=label, polygon=_rect(0, 0, w // 2, h - 1))])


def _city_stem(root, split, name, image_hw=(8, 16)):
    city = name.split('_')[0]
    stem = osp.join(root, 'gtFine', split, city, name + '_gtFine')
    os.makedirs(osp.dirname(stem), exist_ok=True)
    if image_hw is not None:
        img = osp.join(root, 'leftImg8bit', split, city,
                       name + '_leftImg8bit.png')
        os.makedirs(osp.dirname(img), exist_ok=True)
        cv2.imwrite(img, np.full(image_hw + (3, ), 90, np.uint8))
    return stem


def _write_json(path, obj):
    with open(path, 'w') as f:
        f.write(obj if isinstance(obj, str) else json.dumps(obj))


# name -> (writer(stem), what the skip line must say)
CITY_BAD = {
    'bad_000000_000001': (lambda s: _write_json(
        s + '_polygons.json', '{"imgHeight": 8, "imgWi'), 'not valid JSON'),
    'bad_000000_000002': (lambda s: _write_json(
        s + '_polygons.json', _polygons(label='spaceship')), "'spaceship'"),
    'bad_000000_000003': (lambda s: _write_json(
        s + '_polygons.json', dict(objects=[])),
                          'not a Cityscapes polygon file'),
    'bad_000000_000004': (lambda s: bf.empty(s + '_labelIds.png'),
                          'empty (0 bytes)'),
    'bad_000000_000005':
    (lambda s: bf.text(s + '_labelIds.png', 'not a png'),
     'unreadable labelIds'),
    'bad_000000_000006': (lambda s: cv2.imwrite(
        s + '_labelIds.png', np.zeros((8, 16, 3), np.uint8)), '3 channels'),
    'bad_000000_000007': (lambda s: _write_json(
        s + '_polygons.json', _polygons(h=4)), 'label 4x16 but image'),
}


def _truncate_png(path):
    cv2.imwrite(path, np.random.RandomState(0).randint(
        0, 30, (8, 16)).astype(np.uint8))
    with open(path, 'rb') as f:
        data = f.read()
    with open(path, 'wb') as f:
        f.write(data[:len(data) // 2])


@pytest.fixture
def city(tmp_path):
    """A raw Cityscapes with 2 good annotations and every bad kind."""
    root = str(tmp_path / 'cityscapes')
    good = _city_stem(root, 'train', 'aachen_000000_000019')
    _write_json(good + '_polygons.json', _polygons())
    ids = _city_stem(root, 'val', 'bremen_000000_000042')
    cv2.imwrite(ids + '_labelIds.png', np.full((8, 16), 7, np.uint8))
    bad = {}
    for name, (write, says) in CITY_BAD.items():
        stem = _city_stem(root, 'train', name)
        write(stem)
        bad[name] = says
    stem = _city_stem(root, 'train', 'bad_000000_000008')
    _truncate_png(stem + '_labelIds.png')
    bad['bad_000000_000008'] = 'unreadable labelIds'
    stem = _city_stem(root, 'val', 'bad_000000_000009', image_hw=None)
    _write_json(stem + '_polygons.json', _polygons())
    bad['bad_000000_000009'] = 'is missing'
    inputs = sorted(
        f for f in glob.glob(osp.join(root, '**', '*'), recursive=True)
        if osp.isfile(f))
    return root, bad, inputs, (good, ids)


def test_cityscapes_skips_bad_annotations_and_converts_the_rest(
        fault_fork, city):
    root, bad, inputs, (good, ids) = city
    res = fault_fork.run(
        CITY, [root],
        keep=inputs,
        mode='batch',
        names=list(bad) + list(bad.values()),
        rc=1)
    out = res.stdout
    for name, says in bad.items():
        (line, ) = [ln for ln in out.splitlines()
                    if ln.startswith('skipped ') and name in ln]
        assert says in line, line
        assert not glob.glob(osp.join(root, '**', name + '*TrainIds.png'),
                             recursive=True)
    assert f'skipped {len(bad)} of {len(bad) + 2} annotations' in out
    assert len(res.error_lines) == 1  # the closing summary
    label = cv2.imread(good + '_labelTrainIds.png', cv2.IMREAD_UNCHANGED)
    assert label.shape == (8, 16) and (label[:, :8] == 0).all()
    assert (label[:, 9:] == 255).all()
    label = cv2.imread(ids + '_labelTrainIds.png', cv2.IMREAD_UNCHANGED)
    assert (label == 0).all()  # labelId 7 (road) -> trainId 0
    with open(osp.join(root, 'train.txt')) as f:
        assert f.read().split() == ['aachen/aachen_000000_000019']


def test_cityscapes_nproc_2_skips_the_same(fault_fork, city):
    root, bad, inputs, _ = city
    res = fault_fork.run(
        CITY, [root, '--nproc', '2'], keep=inputs, mode='batch',
        names=list(bad), rc=1)
    assert f'skipped {len(bad)} of {len(bad) + 2}' in res.stdout


def test_cityscapes_output_linked_to_its_input(fault_fork, tmp_path):
    """A labelTrainIds name that is a symlink to the labelIds input: with
    --force the item is skipped instead of written over its input."""
    root = str(tmp_path / 'cs')
    stem = _city_stem(root, 'train', 'aachen_000000_000001')
    cv2.imwrite(stem + '_labelIds.png', np.full((8, 16), 26, np.uint8))
    os.symlink(stem + '_labelIds.png', stem + '_labelTrainIds.png')
    fault_fork.run(
        CITY, [root, '--force'],
        keep=[stem + '_labelIds.png'],
        mode='batch',
        names=['aachen_000000_000001', 'is the input'],
        rc=1)


@pytest.mark.parametrize('case', ['missing', 'no_gtfine', 'no_annotations',
                                  'a_file', 'nproc0'])
def test_cityscapes_bad_folder_or_option(fault_fork, tmp_path, case):
    root = tmp_path / 'cs'
    (tmp_path / 'notes.txt').write_text('a file of the user')
    args = [root]
    if case == 'no_gtfine':
        root.mkdir()
        names = ['gtFine']
    elif case == 'no_annotations':
        (root / 'gtFine' / 'train').mkdir(parents=True)
        names = ['no *_gtFine_polygons.json']
    elif case == 'a_file':
        root.write_bytes(b'x')
        names = [root]
    elif case == 'nproc0':
        stem = _city_stem(str(root), 'train', 'a_000000_000001')
        _write_json(stem + '_polygons.json', _polygons())
        args += ['--nproc', '0']
        names = ['--nproc']
    else:
        names = [root]
    fault_fork.run(CITY, args, keep=[tmp_path], names=names, rc=1)


def test_cityscapes_fresh_interpreter(fault, tmp_path):
    fault.run(CITY, [tmp_path / 'nowhere'], names=['nowhere'], rc=1)


def test_cityscapes_killed_mid_run_reruns_cleanly(fault_fork, tmp_path):
    """kill -9 while the 2nd of 3 labels is being written: that output is
    absent (not partial); the re-run converts what is missing, keeps the
    rest and leaves no temporary file; the result equals a clean run."""
    root = str(tmp_path / 'cs')
    stems = []
    for i in range(3):
        stem = _city_stem(root, 'train', f'aachen_000000_00000{i}')
        _write_json(stem + '_polygons.json', _polygons(label='car'))
        stems.append(stem)
    victim = osp.basename(stems[1]) + '_labelTrainIds.png'
    killer = bf.kill_when(osp.join(root, 'gtFine'), victim)
    res = fault_fork.call(
        CITY, [root], env=dict(SCTNET_TEST_SLOW_SAVE=f'{victim}:60'))
    killer.join()
    assert res.returncode == -9 and killer.killed, res.output
    assert osp.isfile(stems[0] + '_labelTrainIds.png')
    assert not osp.exists(stems[1] + '_labelTrainIds.png')
    res = fault_fork.call(CITY, [root])
    assert res.returncode == 0, res.output
    assert '1 existing labelTrainIds kept' in res.stdout
    assert not glob.glob(osp.join(root, '**', '.*'), recursive=True)
    for stem in stems:
        label = cv2.imread(stem + '_labelTrainIds.png', cv2.IMREAD_UNCHANGED)
        assert (label[:, :8] == 13).all() and (label[:, 9:] == 255).all()


def test_cityscapes_ctrl_c_is_one_line_and_rerun_continues(
        fault_fork, tmp_path):
    """Ctrl-C (SIGINT) while the 2nd of 3 labels is written: one error
    line saying how far it got, no traceback, no partial file; the re-run
    continues."""
    root = str(tmp_path / 'cs')
    stems = []
    for i in range(3):
        stem = _city_stem(root, 'val', f'bremen_000000_00000{i}')
        cv2.imwrite(stem + '_labelIds.png', np.full((8, 16), 26, np.uint8))
        stems.append(stem)
    inputs = [s + '_labelIds.png' for s in stems]
    victim = osp.basename(stems[1]) + '_labelTrainIds.png'
    killer = bf.kill_when(osp.join(root, 'gtFine'), victim, signal.SIGINT)
    res = fault_fork.run(
        CITY, [root],
        keep=inputs,
        names=['interrupted after 1 of 3 annotations', 'again'],
        rc=1,
        env=dict(SCTNET_TEST_SLOW_SAVE=f'{victim}:60'))
    killer.join()
    assert killer.killed
    assert not osp.exists(stems[1] + '_labelTrainIds.png')
    assert not glob.glob(osp.join(root, '**', '.*'), recursive=True)
    res = fault_fork.call(CITY, [root])
    assert res.returncode == 0 and '1 existing labelTrainIds kept' in \
        res.stdout, res.output
    for stem in stems:
        label = cv2.imread(stem + '_labelTrainIds.png', cv2.IMREAD_UNCHANGED)
        assert (label == 13).all()  # car


# ------------------------------------------------------------ COCO-Stuff
def _coco_item(src, name, hw=(6, 10), ids=(1, 92)):
    from scipy.io import savemat
    cv2.imwrite(osp.join(src, 'images', name + '.jpg'),
                np.full(hw + (3, ), 120, np.uint8))
    lab = np.zeros(hw, np.uint16)
    lab[:, :hw[1] // 2] = ids[0]
    lab[:, hw[1] // 2:] = ids[1]
    savemat(osp.join(src, 'annotations', name + '.mat'), dict(S=lab))


def _coco_src(root):
    src = osp.join(root, 'cocostuff-10k')
    for d in ('images', 'annotations', 'imageLists'):
        os.makedirs(osp.join(src, d))
    return src


@pytest.fixture
def coco(tmp_path):
    """Raw COCO-Stuff-10K: 2 good images, every bad kind."""
    from scipy.io import savemat
    src = _coco_src(str(tmp_path))
    img = lambda n: osp.join(src, 'images', n + '.jpg')  # noqa: E731
    mat = lambda n: osp.join(src, 'annotations', n + '.mat')  # noqa: E731
    _coco_item(src, 'good_train')
    _coco_item(src, 'good_test')
    bad = {}
    _coco_item(src, 'no_image')
    os.unlink(img('no_image'))
    bad['no_image'] = 'is missing'
    _coco_item(src, 'no_mat')
    os.unlink(mat('no_mat'))
    bad['no_mat'] = 'is missing'
    _coco_item(src, 'empty_jpg')
    bf.empty(img('empty_jpg'))
    bad['empty_jpg'] = 'empty (0 bytes)'
    _coco_item(src, 'truncated_jpg', hw=(64, 64))
    with open(img('truncated_jpg'), 'rb') as f:
        data = f.read()
    with open(img('truncated_jpg'), 'wb') as f:
        f.write(data[:len(data) // 2])
    bad['truncated_jpg'] = 'unreadable'
    _coco_item(src, 'text_mat')
    bf.text(mat('text_mat'), 'not matlab')
    bad['text_mat'] = 'not a readable MATLAB file'
    _coco_item(src, 'no_S')
    savemat(mat('no_S'), dict(L=np.zeros((6, 10), np.uint8)))
    bad['no_S'] = 'no label map "S"'
    _coco_item(src, 'S_3d')
    savemat(mat('S_3d'), dict(S=np.zeros((6, 10, 2), np.uint8)))
    bad['S_3d'] = 'expected a 2-D label map'
    _coco_item(src, 'wrong_size')
    savemat(mat('wrong_size'), dict(S=np.zeros((5, 10), np.uint8)))
    bad['wrong_size'] = '5x10 but the image 6x10'
    bad['../escape'] = 'not a file name'
    train = ['good_train'] + [n for n in bad]
    with open(osp.join(src, 'imageLists', 'train.txt'), 'w') as f:
        f.write('\n'.join(n + '.jpg' for n in train) + '\n\n')
    with open(osp.join(src, 'imageLists', 'test.txt'), 'w') as f:
        f.write('good_test\ngood_test\n')  # listed twice: converted once
    return src, bad


def test_coco_skips_bad_images_and_converts_the_rest(fault_fork, coco,
                                                     tmp_path):
    src, bad = coco
    out = tmp_path / 'out'
    res = fault_fork.run(
        COCO, [src, '-o', out],
        keep=[src],
        mode='batch',
        names=list(bad) + list(bad.values()),
        rc=1)
    for name, says in bad.items():
        (line, ) = [ln for ln in res.stdout.splitlines()
                    if ln.startswith('skipped ') and repr(name) in ln]
        assert says in line, line
    assert f'skipped {len(bad)} of {len(bad) + 2} images' in res.stdout
    written = sorted(
        osp.relpath(f, out)
        for f in glob.glob(osp.join(out, '**', '*.*'), recursive=True))
    assert written == [
        'annotations/test2014/good_test_labelTrainIds.png',
        'annotations/train2014/good_train_labelTrainIds.png',
        'images/test2014/good_test.jpg', 'images/train2014/good_train.jpg'
    ]
    label = cv2.imread(
        str(out / 'annotations/train2014/good_train_labelTrainIds.png'),
        cv2.IMREAD_UNCHANGED)
    assert (label[:, :5] == 1).all() and (label[:, 5:] == 81).all()
    assert not (tmp_path / 'escape.jpg').exists()


@pytest.mark.parametrize(
    'case', ['missing', 'no_lists', 'empty_lists', 'out_is_file',
             'out_links_into_input', 'nproc0'])
def test_coco_bad_folder_or_option(fault_fork, tmp_path, case):
    src = _coco_src(str(tmp_path))
    _coco_item(src, 'a')
    for split in ('train', 'test'):
        bf.text(osp.join(src, 'imageLists', split + '.txt'),
                '' if case == 'empty_lists' else 'a\n')
    out = tmp_path / 'out'
    args = [src, '-o', out]
    names = []
    if case == 'missing':
        args[0] = str(tmp_path / 'nowhere')
        names = [osp.join(args[0], 'images')]
    elif case == 'no_lists':
        os.unlink(osp.join(src, 'imageLists', 'test.txt'))
        names = ['test.txt']
    elif case == 'empty_lists':
        names = ['list no images']
    elif case == 'out_is_file':
        out.write_bytes(b'x')
        names = [out, 'not a folder']
    elif case == 'out_links_into_input':
        (out / 'images').mkdir(parents=True)
        os.symlink(osp.join(src, 'images'), out / 'images' / 'train2014')
        names = ['train2014', 'is the input folder']
    else:
        args += ['--nproc', '0']
        names = ['--nproc']
    fault_fork.run(COCO, args, keep=[src], names=names, rc=1)
    if case == 'out_links_into_input':
        assert os.listdir(osp.join(src, 'images')) == ['a.jpg']


def test_coco_killed_mid_run_reruns_cleanly(fault_fork, tmp_path):
    src = _coco_src(str(tmp_path))
    names = ['a', 'b', 'c']
    for n in names:
        _coco_item(src, n)
    bf.text(osp.join(src, 'imageLists', 'train.txt'), '\n'.join(names))
    bf.text(osp.join(src, 'imageLists', 'test.txt'), '')
    out = tmp_path / 'out'
    killer = bf.kill_when(str(out), 'b_labelTrainIds.png')
    res = fault_fork.call(
        COCO, [src, '-o', out],
        env=dict(SCTNET_TEST_SLOW_SAVE='b_labelTrainIds.png:60'))
    killer.join()
    assert res.returncode == -9 and killer.killed, res.output
    ann = out / 'annotations' / 'train2014'
    assert (ann / 'a_labelTrainIds.png').is_file()
    assert not (ann / 'b_labelTrainIds.png').exists()
    res = fault_fork.call(COCO, [src, '-o', out])
    assert res.returncode == 0, res.output
    assert '2 converted, 1 kept, 0 skipped' in res.stdout
    assert sorted(os.listdir(ann)) == [n + '_labelTrainIds.png' for n in names]
    assert not glob.glob(osp.join(str(out), '**', '.*'), recursive=True)
