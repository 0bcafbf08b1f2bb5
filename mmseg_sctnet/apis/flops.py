"""FLOPs and parameters of a config's inference network
(``tools/get_flops.py``).

The counting itself is :func:`mmseg_sctnet.deploy.analysis.count_flops`
(``torch.utils.flop_counter.FlopCounterMode``, 2 x MACs, on the meta
device); this module resolves the input size, checks the arguments before
anything is built, prints the table and writes the JSON.
"""
import json
import os.path as osp
from typing import Optional, Sequence, Tuple

from mmseg_sctnet.compat.errors import UserError

from .files import check_output_file, load_config_file, write_file

__all__ = ['get_flops', 'resolve_shape', 'default_shapes', 'MIN_SIDE']

#: smallest input side: the backbone's last stage has stride 32
MIN_SIDE = 32


def default_shapes() -> dict:
    """Config file stem -> (H, W) of the official speed/FLOPs tables
    (the sizes of ``speed/torch_speed.py --type``)."""
    from mmseg_sctnet.deploy.benchmark import MODEL_TYPES
    return {
        osp.splitext(osp.basename(cfg))[0]: tuple(shape)
        for cfg, shape in MODEL_TYPES.values()
    }


def resolve_shape(config: str,
                  shape: Optional[Sequence[int]]) -> Tuple[int, int]:
    """``(H, W)`` from ``--shape`` (one number: square) or the config's
    official test size.

    Raises:
        UserError: a malformed or too small shape, or no default size.
    """
    if shape:
        shape = list(shape) * 2 if len(shape) == 1 else list(shape)
        if len(shape) != 2:
            raise UserError(f'--shape expects H W (or one number for a '
                            f'square), got {len(shape)} numbers: {shape}')
        if min(shape) < MIN_SIDE:
            raise UserError(f'--shape {shape[0]} {shape[1]}: height and '
                            f'width must be >= {MIN_SIDE} (the backbone '
                            'downsamples by 32)')
        return tuple(shape)
    stem = osp.splitext(osp.basename(config))[0]
    shapes = default_shapes()
    if stem in shapes:
        return shapes[stem]
    raise UserError(f'no default input size for {config}; pass --shape H W '
                    '(e.g. --shape 1024 2048)')


def get_flops(config: str,
              shape: Optional[Sequence[int]] = None,
              deploy: bool = False,
              json_out: Optional[str] = None) -> dict:
    """Count and print the FLOPs/parameters of ``config``'s inference model
    (random weights, nothing loaded); write them to ``json_out`` (a new
    file) too.

    Returns:
        dict: ``config``, ``shape``, ``params``, ``deploy``, and the
        :func:`count_flops` figures (``flops``, ``gflops``,
        ``by_operator``, ``by_module``).

    Raises:
        UserError: a missing/unreadable config or one without a model, a
            bad shape, or a ``json_out`` that exists, is the config or
            cannot be written -- all before the model is built.
    """
    cfg = load_config_file(config)
    hw = resolve_shape(config, shape)
    if json_out:
        check_output_file(
            json_out,
            inputs=[config],
            exists_hint='choose another path (files are never '
            'overwritten)')
    if not isinstance(cfg.get('model'), dict):
        raise UserError(f'{config} defines no model (is it a dataset or '
                        'schedule base?); pass a model config.')
    from mmseg_sctnet.deploy import build_inference_model, switch_to_deploy
    from mmseg_sctnet.deploy.analysis import count_flops, inference_params
    try:
        model = build_inference_model(cfg, init_weights=False)
    except (KeyError, TypeError, ValueError) as e:  # a wrong model config
        raise UserError(f'cannot build the model of {config}: '
                        f'{type(e).__name__}: {e}') from None
    params = inference_params(model)
    if deploy:
        from .deploy_checkpoint import require_sctnet
        require_sctnet(model, config)
        switch_to_deploy(model)
    res = count_flops(model, hw, by_module=True)
    line = '=' * 60
    print(line)
    print(f'Config:      {config}')
    print(f'Input shape: 1x3x{hw[0]}x{hw[1]}'
          f'{"  (deployed graph)" if deploy else ""}')
    print(f'Params:      {params:,} ({params / 1e6:.2f} M, inference '
          'modules only)')
    print(f'GFLOPs:      {res["gflops"]:.1f}  ({res["flops"]:,} FLOPs = 2 x '
          'MACs)')
    for name, v in res.get('by_module', {}).items():
        print(f'  {name:12s} {v / 1e9:10.2f}')
    for op, v in res['by_operator'].items():
        print(f'  [{op}] {v / 1e9:.2f}')
    print('Counted: every convolution (functional ones included) and matrix '
          'product;\nnot counted: BN, activations, softmax, pooling, '
          'interpolation.')
    print(line)
    out = dict(
        config=config, shape=list(hw), params=params, deploy=deploy, **res)
    if json_out:
        write_file(json_out, (json.dumps(out, indent=2) + '\n').encode(),
                   inputs=[config])
        print(f'wrote {json_out}')
    return out
