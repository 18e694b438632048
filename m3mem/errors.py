"""Every error m3mem reports, by kind. The kinds (and the exit code the CLI gives each) are:

- ``UsageError`` (2): bad settings or arguments (``ConfigError``);
- ``InputError`` (3): a file given to m3mem is missing, foreign or damaged (``MediaError``,
  ``MemoryFileError``, ``IngestError``, ``AnnotationError``);
- ``ModelError`` (4): a model could not be loaded or failed (``WeightsError``, ``ChatError``,
  ``MemorizerError``);
- ``StorageError`` (1): a memory could not be written (disk full); committed clips are kept.

The base kinds live in the lowest layer (``preprocessing.errors``) so every layer raises them.
"""

from __future__ import annotations

from preprocessing.errors import InputError, M3memError, MediaError, ModelError, UsageError, WeightsError


class ConfigError(UsageError):
    """A settings file, environment variable or flag has an unknown name or a bad value."""


class MemoryFileError(InputError):
    """A memory file is missing, not an m3mem memory, too new, or damaged."""


class IngestError(InputError):
    """Ingest cannot go on (the memory belongs to another video, ...)."""


class AnnotationError(InputError, ValueError):
    """An evaluation annotation file is missing, not JSON, or not in M3-Bench's shape."""


class MemoryBusyError(InputError):
    """Another process is writing the memory (one writer per memory)."""


class StorageError(M3memError):
    """A memory could not be written (disk full, read-only folder); what was committed is kept."""


class EmbedderMismatchError(UsageError):
    """The text embedder chosen makes embeddings of another dimension than the memory holds."""


__all__ = ["AnnotationError", "ConfigError", "EmbedderMismatchError", "IngestError", "InputError", "M3memError",
           "MediaError", "MemoryBusyError", "MemoryFileError", "ModelError", "StorageError", "UsageError",
           "WeightsError"]
