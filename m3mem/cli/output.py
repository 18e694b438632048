"""Terminal output: JSON, and text made safe to print (memories can hold anything a video said)."""

from __future__ import annotations

import json
import re
import sys

from preprocessing.types import timecode

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")  # keeps \t and \n


def safe(text: str) -> str:
    """``text`` without control characters (ANSI escapes, carriage returns, bells)."""
    return _CONTROL.sub("", text)


def say(text: str = "") -> None:
    print(safe(text), flush=True)


def emit_json(obj) -> None:
    """One JSON document on stdout (JSON escapes control characters itself)."""
    json.dump(obj, sys.stdout, indent=2, ensure_ascii=False)
    sys.stdout.write("\n")
    sys.stdout.flush()


def span(start: float, end: float) -> str:
    return f"{timecode(start)}-{timecode(end)}"
