"""Errors a person can cause.

Every exception raised for bad input (a missing file, a bad value, no network for a
download, a full or read-only disk) is a ``UserError`` whose message is one clear sentence.
The CLI prints it to stderr and exits non-zero; the GUI shows it in a dialog.  Anything else is a bug.
"""


class UserError(Exception):
    """A problem with the user's input, explained in one sentence."""


class DataError(UserError):
    """A dataset could not be loaded."""


class RunError(UserError):
    """A run folder could not be read or written."""


class ConfigError(UserError):
    """A configuration value is invalid."""


class DiskError(RunError):
    """A file could not be written: the disk is full or read-only, or the folder may not be written."""
