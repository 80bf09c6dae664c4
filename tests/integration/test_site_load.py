"""`jiaoying load`: a valid site syncs in one transaction; the same files twice change nothing;
an invalid site changes nothing — on SQLite and PostgreSQL."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from sqlalchemy import select

from dispatcher.db import sites_repo
from dispatcher.db.session import transaction
from dispatcher.db.tables import AreaRow, DutyShiftRow, PersonRow, PlanRow, RoleRow, SiteRow
from dispatcher.services.site import load_site_files
from dispatcher.sites import SiteInvalid, check_site
from tests.conftest import FIXED_NOW, SAMPLE_SITE


def snapshot(url: str) -> dict[str, list[tuple]]:
    """Every synced row, as plain tuples."""
    out: dict[str, list[tuple]] = {}
    with transaction(url) as s:
        for model in (SiteRow, AreaRow, RoleRow, PersonRow, DutyShiftRow, PlanRow):
            cols = [c.key for c in model.__table__.columns]
            out[model.__tablename__] = sorted(
                tuple(repr(getattr(r, c)) for c in cols) for r in s.scalars(select(model)))
    return out


def load(url: str, path: Path):
    with transaction(url) as s:
        return load_site_files(s, path, FIXED_NOW)


def test_loading_the_sample_site_fills_every_table(database_url: str) -> None:
    report = load(database_url, SAMPLE_SITE)
    assert report.added["people"] >= 50 and report.added["plans"] >= 10
    with transaction(database_url) as s:
        site = sites_repo.read_site(s)
    assert site is not None and "330599100" in site.areas
    assert site.plans[0].id == "rainstorm-red"


def test_loading_the_same_files_twice_changes_nothing(database_url: str) -> None:
    load(database_url, SAMPLE_SITE)
    before = snapshot(database_url)
    report = load(database_url, SAMPLE_SITE)
    assert report.total == 0 and report.summary() == "no changes"
    assert snapshot(database_url) == before


def test_an_invalid_site_changes_nothing(database_url: str, tmp_path: Path) -> None:
    load(database_url, SAMPLE_SITE)
    before = snapshot(database_url)
    broken = tmp_path / "qingxi"
    shutil.copytree(SAMPLE_SITE, broken)
    people = broken / "people.yaml"
    # bad input: a person renamed (a valid change) together with an invalid phone number
    text = people.read_text(encoding="utf-8")
    text = text.replace('phone: "+86', 'phone: "+860', 1)
    people.write_text(text, encoding="utf-8")
    with pytest.raises(SiteInvalid) as err:
        load(database_url, broken)
    assert any("phone" in p.message for p in err.value.problems)
    assert snapshot(database_url) == before


def test_a_person_who_leaves_the_roster_is_deactivated_not_deleted(database_url: str, tmp_path: Path) -> None:
    load(database_url, SAMPLE_SITE)
    edited = tmp_path / "qingxi"
    shutil.copytree(SAMPLE_SITE, edited)
    with transaction(database_url) as s:
        site = sites_repo.read_site(s)
    # remove someone nobody refers to as deputy, superior or duty holder, whose leaving keeps the site valid
    referenced = {p.deputy for p in site.people.values()} | {p.superior for p in site.people.values()}
    text = (edited / "people.yaml").read_text(encoding="utf-8")

    def without(person_id: str) -> str:
        start = text.index(f"- id: {person_id}\n")
        end = text.find("\n  - id:", start + 1)
        return text[:start] + text[end + 3:] if end > 0 else text[:start]

    for leaver in (p for p in site.people.values() if p.roles and p.id not in referenced):
        (edited / "people.yaml").write_text(without(leaver.id), encoding="utf-8")
        if check_site(edited)[0] is not None:
            break
    else:
        raise AssertionError("no one can leave the sample roster alone")
    report = load(database_url, edited)
    assert report.removed["people"] == 1
    with transaction(database_url) as s:
        assert s.get(PersonRow, leaver.id).active is False
        assert leaver.id not in sites_repo.read_site(s).people


def test_a_sites_own_fallback_plan_is_loaded_and_used(database_url: str, tmp_path: Path) -> None:
    from dispatcher.domain.hazards import Hazard, Level
    from dispatcher.domain.rules import WarningFacts, resolve
    from dispatcher.services.site import current_site
    from tests.conftest import FIXTURES
    from tests.unit.test_sites import FALLBACK_PLAN

    folder = tmp_path / "tiny"
    shutil.copytree(FIXTURES / "sites" / "tiny", folder)
    with open(folder / "plans.yaml", "a", encoding="utf-8") as f:
        f.write(FALLBACK_PLAN)
    with transaction(database_url) as session:
        load_site_files(session, folder, FIXED_NOW)
    with transaction(database_url) as session:
        site = current_site(session)
        plans = [p.id for p in site.plans]
        resolution = resolve(site, WarningFacts(Hazard.HEAT, Level.RED, ("330599100",), "qingxi-qx", FIXED_NOW))
    assert site.fallback is not None and site.fallback.id == "county-fallback" and "county-fallback" not in plans
    assert {c.plan_id for c in resolution.callouts} == {"county-fallback"}
    assert len(resolution.callouts[0].steps) == 3  # its two steps and the 未叫醒 marker after them
