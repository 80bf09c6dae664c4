"""A site folder read as documented in docs/site-files.md, for the workbook import and export.

The import reads the files as plain YAML (not through ``dispatcher.sites``): it must run on a
people.yaml it is about to replace, and it carries over fields it does not manage as they are. The
area tree is indexed by name so that a workbook may write 潭头村, 龙潭镇/潭头村, 潭头村/一组 or a code.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..domain.areas import Area, AreaTree, normalize_code
from ..yamlsource import YamlFailure, parse_yaml
from .reader import Problem

_PATH_SEPARATOR = re.compile(r"\s*[/／]\s*")


def plain(value: Any) -> str:
    """A YAML scalar as text ("" for anything that is not a plain value)."""
    if value is None or isinstance(value, bool | dict | list):
        return ""
    return str(value).strip()


def squeeze(text: str) -> str:
    """A name as compared: without blanks, full-width brackets as ASCII ones."""
    return "".join(text.split()).replace("（", "(").replace("）", ")")


@dataclass
class AreaIndex:
    """The site's areas and zones, found by code, by name or by a path of names."""

    tree: AreaTree
    zones: dict[str, str] = field(default_factory=dict)  # zone id -> name
    _by_name: dict[str, list[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for area in self.tree:
            self._by_name.setdefault(squeeze(area.name), []).append(area.code)

    def areas(self, text: str) -> list[str]:
        """The codes ``text`` may mean: a code, a name, or names from the top down (龙潭镇/潭头村;
        levels may be left out: 青溪县/潭头村). Empty when nothing matches; several when ambiguous."""
        digits = "".join(text.split())
        if digits.isdigit():
            try:
                code = normalize_code(digits)
            except ValueError:
                return []
            return [code] if code in self.tree else []
        names = [squeeze(part) for part in _PATH_SEPARATOR.split(text.strip()) if part.strip()]
        if not names:
            return []
        return [code for code in self._by_name.get(names[-1], []) if self._under(code, names[:-1])]

    def _under(self, code: str, names: list[str]) -> bool:
        """Whether the ancestors of ``code`` include ``names`` in that order (top down)."""
        wanted = list(reversed(names))
        for area in reversed(self.tree.path(code)[:-1]):
            if wanted and squeeze(area.name) == wanted[0]:
                wanted.pop(0)
        return not wanted

    def zones_named(self, text: str) -> list[str]:
        key = squeeze(text)
        return [zid for zid, name in self.zones.items() if key in (zid, squeeze(name))]

    def label(self, code: str, with_zones: bool = False) -> str:
        """The shortest text that finds exactly this area: its name, else names from a parent down
        (龙潭镇/潭头村), else its code."""
        path = self.tree.path(code)
        for start in range(len(path) - 1, -1, -1):
            text = "/".join(a.name for a in path[start:])
            if self.areas(text) == [code] and not (with_zones and self.zones_named(text)):
                return text
        return code

    def zone_label(self, zone_id: str) -> str:
        name = self.zones.get(zone_id, zone_id)
        if self.zones_named(name) == [zone_id] and not self.areas(name):
            return name
        return zone_id


@dataclass
class SiteFiles:
    folder: Path
    name: str  # the county's name (areas.yaml ``name``)
    timezone: str  # areas.yaml ``timezone`` ("" when not given)
    areas: AreaIndex
    roles: dict[str, str]  # role id -> display name, in file order
    people: list[dict[str, Any]]  # as written in people.yaml
    duty: dict[str, Any]  # duty.yaml as written ({} when absent)


def read_site(folder: Path) -> tuple[SiteFiles | None, list[Problem]]:
    """The site's areas, roles, people and duty rota; problems when a file cannot be read (a
    missing people.yaml is an empty roster: the import writes the first one)."""
    folder = Path(folder)
    problems: list[Problem] = []
    areas_doc = _load(folder / "areas.yaml", problems, required=True)
    people_doc = _load(folder / "people.yaml", problems, required=False)
    duty_doc = _load(folder / "duty.yaml", problems, required=False)
    if problems or not isinstance(areas_doc, dict):
        if not problems:
            problems.append(Problem("areas.yaml:1", "expected a mapping with 'areas:'"))
        return None, problems
    found: list[Area] = []
    for item in _list(areas_doc.get("areas")):
        _collect_areas(item, None, found)
    if not found:
        return None, [Problem("areas.yaml:1", "no areas: the import needs the division tree")]
    zones = {plain(z.get("id")): plain(z.get("name")) or plain(z.get("id"))
             for z in _list(areas_doc.get("zones")) if isinstance(z, dict) and plain(z.get("id"))}
    people_doc = people_doc if isinstance(people_doc, dict) else {}
    roles_doc = people_doc.get("roles")
    roles = {str(k): plain(v) for k, v in roles_doc.items()} if isinstance(roles_doc, dict) else {}
    people = [p for p in _list(people_doc.get("people")) if isinstance(p, dict)]
    index = AreaIndex(AreaTree.of(found), zones)
    name = plain(areas_doc.get("name")) or index.tree.name(index.tree.roots[0])
    duty = duty_doc if isinstance(duty_doc, dict) else {}
    return SiteFiles(folder, name, plain(areas_doc.get("timezone")), index, roles, people, duty), []


def _load(path: Path, problems: list[Problem], required: bool) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        if required:
            problems.append(Problem(f"{path.name}:1", f"file is missing: {path}"))
        return None
    except (OSError, UnicodeDecodeError) as exc:
        problems.append(Problem(f"{path.name}:1", f"cannot read the file: {exc}"))
        return None
    try:
        return parse_yaml(text)
    except YamlFailure as exc:
        problems.append(Problem(f"{path.name}:{exc.line}", exc.message))
        return None


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _collect_areas(item: Any, parent: str | None, found: list[Area]) -> None:
    if not isinstance(item, dict) or not plain(item.get("code")):
        return
    code = plain(item.get("code"))
    found.append(Area(code, plain(item.get("name")) or code, parent))
    for child in _list(item.get("children")):
        _collect_areas(child, code, found)
