"""The one exception root of the input adapters.

Why exceptions at all when adapters yield rejections: a bad *record* is data (a Rejection with a reason code and a
location), but an input that cannot be opened or whose format cannot be recognised is an operator error - there is no
record to reject, and the CLI exits with status 2 naming the file. Messages name the file, never its content.
"""

from __future__ import annotations


class AdapterError(Exception):
    """Root of every error an adapter raises instead of yielding a rejection."""


class InputUnreadableError(AdapterError):
    """The input file does not exist, is not a regular file or cannot be read."""


class UnrecognizedInputError(AdapterError):
    """The input was read but is not in any supported format (or not in the format it was declared to be)."""
