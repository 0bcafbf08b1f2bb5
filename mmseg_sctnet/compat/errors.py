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
    'UserError', 'UnsafeCheckpointError', 'CheckpointNotFoundError',
    'CheckpointMismatchError', 'NonFiniteLossError', 'DatasetCheckError',
    'exit_on_user_error'
]


class UserError(Exception):
    """Base class: a mistake in the user's files/config, not a bug."""


class UnsafeCheckpointError(UserError, pickle.UnpicklingError):
    """A checkpoint references objects outside the allow-list."""


class CheckpointNotFoundError(UserError, FileNotFoundError):
    """A checkpoint path that does not exist."""


class CheckpointMismatchError(UserError, ValueError):
    """A checkpoint that does not fit the model of the config."""


class NonFiniteLossError(UserError, RuntimeError):
    """Training produced a NaN/inf loss (or weights)."""


class DatasetCheckError(UserError, ValueError):
    """The dataset check found errors (or warnings not allowed)."""


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
