"""SIAM with other students and teachers: the configs of ``configs/siam``,
batches, teacher checkpoints written as MMSegmentation writes them, and an
independent CWD."""
import torch
from mmengine.config import Config
from mmengine.structures import PixelData
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

DDRNET = 'configs/siam/ddrnet-23-slim_siam_demo_cityscapes.py'
PIDNET = 'configs/siam/pidnet-s_siam_demo_cityscapes.py'
UPERNET_TEACHER = 'configs/siam/upernet_convnext-atto_demo_cityscapes.py'
SCTNET_FROM_UPERNET = (
    'configs/siam/sctnet-s_convnext-teacher_demo_cityscapes.py')
SEGFORMER_TEACHER = 'configs/demo/segformer_mit-b0_demo_cityscapes.py'
ALIGN_TERMS = ('siam.loss_sdha_logits', 'siam.loss_sdha_feat',
               'siam.loss_bfa_stage4', 'siam.loss_bfa_stage3')


def batch(n=2, h=64, w=128, classes=8, seed=0):
    """A normalised-looking image batch and data samples with labels and
    edge maps (PIDNet's boundary head reads ``gt_edge_map``)."""
    g = torch.Generator().manual_seed(seed)
    img = torch.randn(n, 3, h, w, generator=g)
    samples = []
    for _ in range(n):
        s = SegDataSample()
        s.gt_sem_seg = PixelData(
            data=torch.randint(0, classes, (1, h, w), generator=g))
        s.gt_edge_map = PixelData(
            data=torch.randint(0, 2, (1, h, w), generator=g))
        s.set_metainfo(dict(img_shape=(h, w), ori_shape=(h, w)))
        samples.append(s)
    return img, samples


def build_teacher_segmentor(config):
    """The plain MMSegmentation segmentor of a teacher's training config."""
    cfg = Config.fromfile(config)
    cfg.model.backbone.init_cfg = None
    return MODELS.build(cfg.model)


def write_teacher_checkpoint(config, path, seed=0):
    """Build the teacher of ``config`` with random (initialised) weights and
    save it as MMSegmentation's Runner does (``meta`` + ``state_dict`` with
    ``backbone.*``, ``decode_head.*``, ``auxiliary_head.*``). Returns the
    segmentor (eval mode)."""
    torch.manual_seed(seed)
    model = build_teacher_segmentor(config)
    model.init_weights()
    torch.save(dict(meta=dict(iter=300), state_dict=model.state_dict()),
               str(path))
    return model.eval()


def cwd_reference(s, t, tau=4.0):
    """Channel-wise distillation in float64, written out: per (sample,
    channel), softmax over positions of map / tau; KL(teacher || student)
    summed, x tau^2 / (N*C). The student map is resized (bilinear) to the
    teacher's size first where they differ."""
    if s.shape[2:] != t.shape[2:]:
        s = torch.nn.functional.interpolate(
            s, t.shape[2:], mode='bilinear', align_corners=False)
    n, c = s.shape[:2]
    log_s = torch.log_softmax(s.reshape(n, c, -1).double() / tau, -1)
    log_t = torch.log_softmax(t.reshape(n, c, -1).double() / tau, -1)
    return float((log_t.exp() * (log_t - log_s)).sum() * tau**2 / (n * c))
