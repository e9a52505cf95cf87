"""Exceptions that carry a message meant for a person.

Every error fairrec raises on bad input derives from :class:`FairrecError`; the
CLI prints its message (no traceback) and exits with status 2.
"""

from __future__ import annotations

__all__ = ["DataError", "FairrecError", "NotFittedError"]


class FairrecError(Exception):
    """Base class: the message names the file/field/parameter, what was expected and what was received."""


class DataError(FairrecError, ValueError):
    """Input data is malformed (missing columns, duplicate ids, bad values, nothing left after filtering)."""


class NotFittedError(FairrecError, AttributeError):
    """A method that needs a fitted estimator was called before ``fit``."""
