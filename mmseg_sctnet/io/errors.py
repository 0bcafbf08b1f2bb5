"""Errors caused by input a user can fix (a file, a config value, data).

Every class derives from :class:`UserError` *and* from the builtin type a
caller would expect (``FileNotFoundError``, ``ValueError``, ...), so existing
``except ValueError`` code keeps working. Command-line tools catch
:class:`UserError` and print its message -- which names the file or value and
the fix -- without a traceback (:func:`exit_on_user_error`).
"""
import functools
import pickle
import sys

__all__ = [
    'UserError', 'PathError', 'ConfigError', 'CheckpointFileError',
    'UnsafeCheckpointError', 'CheckpointNotFoundError',
    'CheckpointIncompleteError', 'NotACheckpointError',
    'CheckpointMismatchError', 'NonFiniteLossError', 'DatasetCheckError',
    'RunInterrupted', 'DeployUsageError', 'CalibrationDataError',
    'OnnxModelError', 'UnsupportedDtypeError', 'exit_on_user_error'
]


class UserError(Exception):
    """Base class: a mistake in the user's files/config, not a bug."""


class CheckpointFileError(UserError):
    """A checkpoint file that cannot be read as it is (the subclasses say
    why); raised by :func:`mmseg_sctnet.compat.safe_torch_load`."""


class UnsafeCheckpointError(CheckpointFileError, pickle.UnpicklingError):
    """A checkpoint references objects outside the allow-list."""


class CheckpointNotFoundError(CheckpointFileError, FileNotFoundError):
    """A checkpoint path that does not exist."""


class CheckpointIncompleteError(CheckpointFileError, RuntimeError):
    """A PyTorch checkpoint cut short (an interrupted download or copy, a
    killed writer) or otherwise damaged."""


class NotACheckpointError(CheckpointFileError, ValueError):
    """A file that is not a PyTorch checkpoint at all (empty, text, an HTML
    page, an ONNX model, an image, a folder...)."""


class CheckpointMismatchError(UserError, ValueError):
    """A checkpoint that does not fit the model of the config."""


class NonFiniteLossError(UserError, RuntimeError):
    """Training produced a NaN/inf loss (or weights)."""


class DatasetCheckError(UserError, ValueError):
    """The dataset check found errors (or warnings not allowed)."""


class ConfigError(UserError, ValueError):
    """A config file, ``--cfg-options`` key or config argument that is
    wrong (a value is missing, unknown or contradicts another)."""


class PathError(UserError, OSError):
    """An input that cannot be read or an output that cannot be written."""

    def __str__(self) -> str:  # OSError would format (errno, strerror)
        return str(self.args[0]) if self.args else ''


class RunInterrupted(UserError):
    """Ctrl-C (SIGINT) during a run; the message says what is complete."""


class DeployUsageError(UserError, ValueError):
    """A bad option value or file for a deployment/benchmark tool."""


class CalibrationDataError(UserError, ValueError):
    """No calibration images could be read for int8 quantization."""


class OnnxModelError(UserError, ValueError):
    """An ONNX file that is missing, unreadable or does not fit the
    config (class count, input size)."""


class UnsupportedDtypeError(UserError, RuntimeError):
    """A precision (bf16/fp16) the device cannot run natively."""


def exit_on_user_error(main):
    """Decorator for CLI ``main`` functions: a :class:`UserError` ends the
    program with ``error: <message>`` on stderr and exit status 1, without a
    traceback. Other exceptions propagate unchanged."""

    @functools.wraps(main)
    def wrapper(*args, **kwargs):
        try:
            return main(*args, **kwargs)
        except UserError as err:
            print(f'error: {err}', file=sys.stderr)
            raise SystemExit(1) from None

    return wrapper
