"""Areas keyed by administrative division code (GB/T 2260 + town and village extensions).

A code covers every code that starts with it: county ``330599`` covers town ``330599100`` and
village ``330599100201``. Codes are kept as strings of 6 (county), 9 (town/street) or
12 (village/community) digits; wider codes (2-digit province, 4-digit city) may appear in
warnings and plan matches. Below the village, national codes stop; a village's groups (村民小组,
自然村) and grids (网格) are the village's code plus three digits (15), so they nest like codes.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

_CODE = re.compile(r"^\d{2}(\d{2}(\d{2}(\d{3}(\d{3}(\d{3})?)?)?)?)?$")
SITE_AREA_LENGTHS = (6, 9, 12, 15)
CODE_LENGTHS = (2, 4, 6, 9, 12, 15)


def normalize_code(value: str) -> str:
    """Strip the zero padding some feeds add: ``330599000000`` is county ``330599``.

    Raises ValueError for anything that is not a division code.
    """
    code = str(value).strip()
    if not _CODE.match(code):
        raise ValueError(f"{value!r} is not a division code (2, 4, 6, 9, 12 or 15 digits)")
    if len(code) == 15 and code.endswith("000"):
        code = code[:12]
    if len(code) == 12 and code.endswith("000"):
        code = code[:9]
    if len(code) == 9 and code.endswith("000"):
        code = code[:6]
    return code


def covers(outer: str, inner: str) -> bool:
    """True when area ``outer`` contains (or is) area ``inner``."""
    return inner.startswith(outer)


def overlaps(a: str, b: str) -> bool:
    return covers(a, b) or covers(b, a)


def narrower(a: str, b: str) -> str | None:
    """The part two areas have in common: the narrower code, or None when disjoint."""
    if covers(a, b):
        return b
    if covers(b, a):
        return a
    return None


def level_name(code: str) -> str:
    return {2: "province", 4: "city", 6: "county", 9: "town", 12: "village", 15: "group"}.get(len(code), "area")


@dataclass(frozen=True)
class Area:
    code: str
    name: str
    parent: str | None = None
    kind: str = ""  # below the village: group, natural_village or grid (shown, not interpreted)


@dataclass
class AreaTree:
    """The site's division tree. ``root`` is the topmost code (normally the county).

    Lookups by code are dictionary lookups; ``children``, ``within``, ``roots`` and ``label`` use
    an index built on first use (a county with groups has thousands of areas, and a preview asks
    for a label per official). The tree is not changed once built: a new ``areas`` dict, or one of
    another size, is indexed again."""

    areas: dict[str, Area] = field(default_factory=dict)
    _index: _Index | None = field(default=None, init=False, repr=False, compare=False)

    @classmethod
    def of(cls, areas: Iterable[Area]) -> AreaTree:
        return cls({a.code: a for a in areas})

    def __contains__(self, code: object) -> bool:
        return code in self.areas

    def __iter__(self) -> Iterator[Area]:
        return iter(self.areas.values())

    def __len__(self) -> int:
        return len(self.areas)

    def _indexed(self) -> _Index:
        index = self._index
        if index is None or index.areas is not self.areas or index.size != len(self.areas):
            index = self._index = _Index(self.areas)
        return index

    def get(self, code: str) -> Area | None:
        return self.areas.get(code)

    def name(self, code: str) -> str:
        area = self.areas.get(code)
        return area.name if area else code

    @property
    def roots(self) -> list[str]:
        return list(self._indexed().roots)

    def children(self, code: str) -> list[Area]:
        return list(self._indexed().children.get(code, ()))

    def within(self, code: str) -> list[Area]:
        """The area and everything under it, in code order."""
        index = self._indexed()
        codes, found = index.codes, []
        for i in range(bisect_left(codes, code), len(codes)):  # the codes starting with ``code`` are
            if not codes[i].startswith(code):  # one run in code order, from the first not before it
                break
            found.append(index.ordered[i])
        return found

    def path(self, code: str) -> list[Area]:
        """From the root down to ``code``."""
        out: list[Area] = []
        current = self.areas.get(code)
        while current is not None:
            out.append(current)
            current = self.areas.get(current.parent) if current.parent else None
        return list(reversed(out))

    def relates(self, code: str) -> bool:
        """True when a warning for ``code`` concerns this site: it is one of the site's areas,
        or it is wider than the whole site (a province-wide warning)."""
        if code in self.areas:
            return True
        roots = self._indexed().roots
        return bool(roots) and all(covers(code, root) for root in roots)

    def label(self, code: str) -> str:
        """Human-readable path, e.g. 青溪县/青溪镇/溪口村."""
        if code not in self.areas:
            return code
        labels = self._indexed().labels
        text = labels.get(code)
        if text is None:
            text = labels[code] = "/".join(a.name for a in self.path(code))
        return text


class _Index:
    """What AreaTree looks up by parent, by code order and by label, built once from its areas."""

    __slots__ = ("areas", "size", "roots", "children", "ordered", "codes", "labels")

    def __init__(self, areas: dict[str, Area]) -> None:
        self.areas, self.size = areas, len(areas)
        self.children: dict[str | None, list[Area]] = {}
        for area in areas.values():  # in the tree's order, as a scan would find them
            self.children.setdefault(area.parent, []).append(area)
        self.roots = [a.code for a in self.children.get(None, ())]
        self.ordered = sorted(areas.values(), key=lambda a: a.code)
        self.codes = [a.code for a in self.ordered]
        self.labels: dict[str, str] = {}
