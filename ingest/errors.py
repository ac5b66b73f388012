"""The base of mechtrade's own errors.

Each says what is wrong and what to do about it, so a caller (the CLI above all) reports the message
and exits non-zero instead of showing a traceback. Catch :class:`MechtradeError` (or one of its
subclasses), never ``RuntimeError`` or ``ValueError``, which would hide bugs as well.
"""

from __future__ import annotations


class MechtradeError(Exception):
    """A failure mechtrade understands and explains: a gateway call, the configuration, a migration."""
