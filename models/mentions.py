"""Entity mentions inside memory text: ``<face_N>``, ``<voice_N>``, ``<character_N>``.

Memories refer to people by the ids of the face and voice nodes that perception matched; the
agent reads them with those ids translated to stable ``<character_N>`` ids.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable

MENTION_RE = re.compile(r"<(face|voice|character)_(\d+)>")
EQUIVALENCE_RE = re.compile(r"^\s*equivalence\s*:", re.IGNORECASE)
CLIP_REF_RE = re.compile(r"\bCLIP_(\d+)\b")


@dataclass(frozen=True, order=True)
class Mention:
    """One ``<kind_id>`` mention: kind is ``face``, ``voice`` or ``character``."""

    kind: str
    id: int

    def tag(self) -> str:
        return f"<{self.kind}_{self.id}>"


def parse_mentions(text: str) -> list[Mention]:
    """All mentions in ``text`` in order of appearance, duplicates removed."""
    seen: dict[Mention, None] = {}
    for kind, num in MENTION_RE.findall(text):
        seen.setdefault(Mention(kind, int(num)), None)
    return list(seen)


def is_equivalence(text: str) -> bool:
    """True for ``Equivalence: <face_a>, <voice_b>`` lines."""
    return bool(EQUIVALENCE_RE.match(text))


def clip_references(text: str) -> list[int]:
    """Clip indices referenced as ``CLIP_n`` in a query, in order, without duplicates."""
    return list(dict.fromkeys(int(n) for n in CLIP_REF_RE.findall(text)))


def substitute(text: str, replace: Callable[[Mention], str | None]) -> str:
    """Rewrite each mention with ``replace(mention)``; ``None`` keeps the original tag."""

    def _sub(m: re.Match[str]) -> str:
        new = replace(Mention(m.group(1), int(m.group(2))))
        return m.group(0) if new is None else new

    return MENTION_RE.sub(_sub, text)
