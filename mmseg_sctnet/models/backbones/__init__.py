from .sctnet import SCTNet

__all__ = ['SCTNet']
