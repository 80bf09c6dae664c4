"""Areas keyed by administrative division code (GB/T 2260 + town and village extensions).

A code covers every code that starts with it: county ``330599`` covers town ``330599100`` and
village ``330599100201``. Codes are kept as strings of 6 (county), 9 (town/street) or
12 (village/community) digits; wider codes (2-digit province, 4-digit city) may appear in
warnings and plan matches.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

_CODE = re.compile(r"^\d{2}(\d{2}(\d{2}(\d{3}(\d{3})?)?)?)?$")
SITE_AREA_LENGTHS = (6, 9, 12)


def normalize_code(value: str) -> str:
    """Strip the zero padding some feeds add: ``330599000000`` is county ``330599``.

    Raises ValueError for anything that is not a division code.
    """
    code = str(value).strip()
    if not _CODE.match(code):
        raise ValueError(f"{value!r} is not a division code (2, 4, 6, 9 or 12 digits)")
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
    return {2: "province", 4: "city", 6: "county", 9: "town", 12: "village"}.get(len(code), "area")


@dataclass(frozen=True)
class Area:
    code: str
    name: str
    parent: str | None = None


@dataclass
class AreaTree:
    """The site's division tree. ``root`` is the topmost code (normally the county)."""

    areas: dict[str, Area] = field(default_factory=dict)

    @classmethod
    def of(cls, areas: Iterable[Area]) -> AreaTree:
        return cls({a.code: a for a in areas})

    def __contains__(self, code: object) -> bool:
        return code in self.areas

    def __iter__(self) -> Iterator[Area]:
        return iter(self.areas.values())

    def __len__(self) -> int:
        return len(self.areas)

    def get(self, code: str) -> Area | None:
        return self.areas.get(code)

    def name(self, code: str) -> str:
        area = self.areas.get(code)
        return area.name if area else code

    @property
    def roots(self) -> list[str]:
        return [a.code for a in self.areas.values() if a.parent is None]

    def children(self, code: str) -> list[Area]:
        return [a for a in self.areas.values() if a.parent == code]

    def within(self, code: str) -> list[Area]:
        """The area and everything under it, in code order."""
        return sorted((a for a in self.areas.values() if covers(code, a.code)), key=lambda a: a.code)

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
        return bool(self.roots) and all(covers(code, root) for root in self.roots)

    def label(self, code: str) -> str:
        """Human-readable path, e.g. 青溪县/青溪镇/溪口村."""
        path = self.path(code)
        return "/".join(a.name for a in path) if path else code
