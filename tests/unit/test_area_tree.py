"""AreaTree's index (children by parent, codes in order, labels) answers exactly what scanning every
area answers: random trees of counties, towns, villages and groups, asked about their own codes,
codes between and around them, and wider codes (a province, a city)."""

from __future__ import annotations

import random

import pytest

from dispatcher.domain.areas import Area, AreaTree, covers


def random_tree(rng: random.Random) -> list[Area]:
    """One or two counties (a site may have a second root), towns, villages and groups, in an
    arbitrary order, names that repeat."""
    areas: list[Area] = []
    for county in rng.sample(["330599", "330598", "330600", "110101"], rng.randint(1, 2)):
        areas.append(Area(county, f"县{county}"))
        for t in rng.sample(range(100, 120), rng.randint(0, 6)):
            town = f"{county}{t:03d}"
            areas.append(Area(town, rng.choice(["青溪镇", "石门镇", "龙潭镇"]), county))
            for v in rng.sample(range(200, 230), rng.randint(0, 8)):
                village = f"{town}{v:03d}"
                areas.append(Area(village, f"村{v}", town))
                for g in rng.sample(range(1, 20), rng.randint(0, 4)):
                    areas.append(Area(f"{village}{g:03d}", f"{g}组", village, kind="group"))
    rng.shuffle(areas)
    return areas


def queries(rng: random.Random, areas: list[Area]) -> list[str]:
    codes = [a.code for a in areas]
    asked = ["", "33", "3305", "330599", "330599100", "330599100201", "330599100201001", "9", "330599999999999"]
    asked += rng.sample(codes, min(len(codes), 40))
    asked += [c[:n] for c in rng.sample(codes, min(len(codes), 20)) for n in (2, 4, 7, 10, len(c) - 1)]
    asked += [c + "0" for c in rng.sample(codes, min(len(codes), 10))]
    asked += [c[:-1] + str((int(c[-1]) + 1) % 10) for c in rng.sample(codes, min(len(codes), 10))]
    return asked


# The simple definitions: what each method answered before the index, by scanning every area.

def scan_children(areas: dict[str, Area], code: str) -> list[Area]:
    return [a for a in areas.values() if a.parent == code]


def scan_within(areas: dict[str, Area], code: str) -> list[Area]:
    return sorted((a for a in areas.values() if covers(code, a.code)), key=lambda a: a.code)


def scan_path(areas: dict[str, Area], code: str) -> list[Area]:
    out: list[Area] = []
    current = areas.get(code)
    while current is not None:
        out.append(current)
        current = areas.get(current.parent) if current.parent else None
    return list(reversed(out))


def scan_roots(areas: dict[str, Area]) -> list[str]:
    return [a.code for a in areas.values() if a.parent is None]


def scan_relates(areas: dict[str, Area], code: str) -> bool:
    roots = scan_roots(areas)
    return code in areas or (bool(roots) and all(covers(code, r) for r in roots))


def scan_label(areas: dict[str, Area], code: str) -> str:
    path = scan_path(areas, code)
    return "/".join(a.name for a in path) if path else code


@pytest.mark.parametrize("seed", range(40))
def test_the_index_agrees_with_scanning_every_area(seed: int) -> None:
    rng = random.Random(seed)
    areas = random_tree(rng)
    tree = AreaTree.of(areas)
    plain = {a.code: a for a in areas}
    assert tree.roots == scan_roots(plain)
    for code in queries(rng, areas):
        assert tree.children(code) == scan_children(plain, code), code
        assert tree.within(code) == scan_within(plain, code), code
        assert tree.path(code) == scan_path(plain, code), code
        assert tree.relates(code) == scan_relates(plain, code), code
        assert tree.label(code) == scan_label(plain, code), code
        assert tree.label(code) == scan_label(plain, code), code  # the second time from the cache


def test_an_empty_tree_relates_to_nothing_and_holds_nothing() -> None:
    tree = AreaTree()
    assert tree.roots == [] and not tree.relates("330599") and not tree.relates("")
    assert tree.children("330599") == [] and tree.within("") == [] and tree.label("330599") == "330599"


def test_the_answers_are_copies_a_caller_may_change() -> None:
    tree = AreaTree.of([Area("330599", "青溪县"), Area("330599100", "青溪镇", "330599")])
    tree.children("330599").clear()
    tree.within("330599").clear()
    tree.roots.clear()
    assert [a.code for a in tree.children("330599")] == ["330599100"]
    assert [a.code for a in tree.within("330599")] == ["330599", "330599100"]
    assert tree.roots == ["330599"]


def test_a_tree_given_more_areas_or_new_ones_is_indexed_again() -> None:
    tree = AreaTree.of([Area("330599", "青溪县")])
    assert tree.within("330599") == [Area("330599", "青溪县")]
    tree.areas["330599100"] = Area("330599100", "青溪镇", "330599")  # one more: the size tells
    assert [a.code for a in tree.children("330599")] == ["330599100"]
    assert tree.label("330599100") == "青溪县/青溪镇"
    tree.areas = {"330600": Area("330600", "白云县")}  # another dict
    assert tree.roots == ["330600"] and tree.within("330599") == [] and tree.label("330599100") == "330599100"


def test_trees_compare_by_their_areas_not_by_what_was_looked_up() -> None:
    areas = [Area("330599", "青溪县"), Area("330599100", "青溪镇", "330599")]
    asked, fresh = AreaTree.of(areas), AreaTree.of(areas)
    asked.within("330599")
    assert asked == fresh and "_index" not in repr(asked)
