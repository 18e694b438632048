"""Characters: face and voice entities of the same person, merged by union-find.

Every entity is born with its own character id (``birth``), handed out in creation order and never
reused. A character's id is the smallest birth id among its members, so:

- growth never renumbers an existing character;
- a merge keeps the older id, and the younger id still resolves (through the entity born with it)
  to the merged character;
- a split (a voice re-assigned to a stronger face) gives each part the smallest birth id it holds.

The mapping is a pure function of (entities, equivalence pairs): recomputing it after reopening a
memory yields the same ids.
"""

from __future__ import annotations

from collections.abc import Iterable


class UnionFind:
    """Disjoint sets over integer ids, with path halving and union by smaller root."""

    def __init__(self) -> None:
        self.parent: dict[int, int] = {}

    def find(self, x: int) -> int:
        parent = self.parent
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            lo, hi = (ra, rb) if ra < rb else (rb, ra)
            self.parent[hi] = lo


def build_characters(
    births: dict[int, int], pairs: Iterable[tuple[int, int]]
) -> tuple[dict[int, int], dict[int, list[int]]]:
    """Group entities into characters.

    Args:
        births: entity node id -> birth character id, for every face and voice entity.
        pairs: (entity, entity) equivalences to merge.

    Returns:
        ``entity -> character id`` and ``character id -> sorted member entity ids``.
    """
    uf = UnionFind()
    for a, b in pairs:
        if a in births and b in births:
            uf.union(a, b)
    groups: dict[int, list[int]] = {}
    for entity in sorted(births):
        groups.setdefault(uf.find(entity), []).append(entity)
    of_entity: dict[int, int] = {}
    members: dict[int, list[int]] = {}
    for group in groups.values():
        char = min(births[e] for e in group)
        members[char] = group
        for e in group:
            of_entity[e] = char
    return of_entity, members

