from .encoder_decoder_distill import EncoderDecoderDistill

__all__ = ['EncoderDecoderDistill']
