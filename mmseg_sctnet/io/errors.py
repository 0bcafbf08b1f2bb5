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
    'OnnxModelError', 'UnsupportedDtypeError', 'DeviceUnavailableError',
    'RunStopped', 'EXIT_STOPPED', 'exit_on_user_error'
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


#: exit status of a run stopped on request after saving what it needs to
#: continue (``EX_TEMPFAIL`` of sysexits.h: "try again later"); distinct from
#: 0 (done), 1 (an error) and 128 + N (killed by signal N)
EXIT_STOPPED = 75


class RunStopped(Exception):
    """A run that stopped on request (SIGTERM / SIGUSR1: pre-emption, a
    time limit) after writing a checkpoint to continue from. Not an error:
    its message (the checkpoint and how to resume) has been logged by the
    run; :func:`exit_on_user_error` ends the tool with ``exit_status``:
    :data:`EXIT_STOPPED`, or 0 under a launcher script that exits with
    :data:`EXIT_STOPPED` itself. ``checkpoint`` and ``iteration``: what was
    saved.
    """

    def __init__(self, message: str, checkpoint=None, iteration=None,
                 exit_status: int = EXIT_STOPPED):
        super().__init__(message)
        self.checkpoint = checkpoint
        self.iteration = iteration
        self.exit_status = exit_status


class DeployUsageError(UserError, ValueError):
    """A bad option value or file for a deployment/benchmark tool."""


class CalibrationDataError(UserError, ValueError):
    """No calibration images could be read for int8 quantization."""


class OnnxModelError(UserError, ValueError):
    """An ONNX file that is missing, unreadable or does not fit the
    config (class count, input size)."""


class UnsupportedDtypeError(UserError, RuntimeError):
    """A precision (bf16/fp16) the device cannot run natively."""


class DeviceUnavailableError(UserError, RuntimeError):
    """The machine has no device of the kind a tool checks (no CUDA GPU
    visible to PyTorch)."""


def exit_on_user_error(main):
    """Decorator for CLI ``main`` functions: a :class:`UserError` ends the
    program with ``error: <message>`` on stderr and exit status 1, without a
    traceback; a :class:`RunStopped` (its line already logged) with its
    ``exit_status`` (75). Other exceptions propagate unchanged."""

    @functools.wraps(main)
    def wrapper(*args, **kwargs):
        try:
            return main(*args, **kwargs)
        except UserError as err:
            print(f'error: {err}', file=sys.stderr)
            raise SystemExit(1) from None
        except RunStopped as stop:
            raise SystemExit(stop.exit_status) from None

    return wrapper
