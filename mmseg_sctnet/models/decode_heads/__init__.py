from .sct_head import AuxSCTHead, SCTHead

__all__ = ['SCTHead', 'AuxSCTHead']
from .vit_guidance_head import VitGuidanceHead, match_channel_statistics  # noqa: E402

__all__ += ['VitGuidanceHead', 'match_channel_statistics']
from .teacher_head_split import (TeacherHeadSplit,  # noqa: E402
                                 register_head_split)

__all__ += ['TeacherHeadSplit', 'register_head_split']
