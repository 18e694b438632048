"""The project's error hierarchy.

It lives in the lowest layer so that every layer raises the same kinds; ``m3mem.errors`` adds the
memory's own kinds and the CLI maps each kind to one exit code (``m3mem.cli``). An exception that
is not an ``M3memError`` is a bug, and is reported as one.
"""

from __future__ import annotations


class M3memError(Exception):
    """Base of every error m3mem reports to a user."""


class UsageError(M3memError, ValueError):
    """Bad settings or arguments: the user can fix the command (exit 2)."""


class InputError(M3memError):
    """A file given to m3mem is missing, foreign, damaged or not what was expected (exit 3)."""


class ModelError(M3memError):
    """A model could not be loaded, or a model or model server failed (exit 4)."""


class MediaError(InputError):
    """A video that cannot be opened or decoded; the message names the file (and clip)."""


class WeightsError(ModelError):
    """Packaged weights are missing, not the pinned version, or fail their checksum."""
