"""User-fixable errors of the deployment tools (export, benchmarks, ONNX
evaluation). Each names the file or value and the fix; the CLI ``main``s
print them as one ``error:`` line (:func:`~mmseg_sctnet.compat.errors.
exit_on_user_error`)."""
from mmseg_sctnet.compat.errors import UserError

__all__ = [
    'UserError', 'DeployUsageError', 'CalibrationDataError', 'OnnxModelError',
    'UnsupportedDtypeError'
]


class DeployUsageError(UserError, ValueError):
    """A bad option value or file for a deployment/benchmark tool."""


class CalibrationDataError(UserError, ValueError):
    """No calibration images could be read for int8 quantization."""


class OnnxModelError(UserError, ValueError):
    """An ONNX file that is missing, unreadable or does not fit the
    config (class count, input size)."""


class UnsupportedDtypeError(UserError, RuntimeError):
    """A precision (bf16/fp16) the device cannot run natively."""
