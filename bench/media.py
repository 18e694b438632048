"""Where the shared real media are: ``$M3MEM_MEDIA``, else ``../shared/media`` beside the checkout.
Benchmarks, scripts and tests all find them here."""

from __future__ import annotations

import os
from pathlib import Path

MEDIA = Path(os.environ.get("M3MEM_MEDIA") or Path(__file__).resolve().parents[2] / "shared" / "media")
