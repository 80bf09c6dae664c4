"""The record is keyed, covers its rows and is chained to the other records (SPEC 6, Security):
each way of tampering an independent probe found — rewriting an event and recomputing the chain,
cutting the tail and fixing the head, editing a warning's headline, an acknowledgement's note or
author, flipping a call-out's state, deleting a whole record — is detected, on SQLite and
PostgreSQL, by ``record_repo.check`` / ``check_all`` and by ``jiaoying record --verify [--all]``."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from alembic import command
from dispatcher.db import record_repo
from dispatcher.db.migrate import _config, upgrade
from dispatcher.db.session import engine_for, transaction
from dispatcher.db.tables import (
    AttemptRow,
    BroadcastOrderRow,
    CalloutRow,
    EventRow,
    LedgerHeadRow,
    LedgerRow,
    RecordHeadRow,
    WarningRow,
)
from dispatcher.domain.callouts import AckVia
from dispatcher.domain.record import GENESIS, Keyring, RecordKey, event_hash, event_mac
from dispatcher.services import ack
from tests.e2e.conftest import engine, harness, outbox, tiny_site  # noqa: F401 - fixtures
from tests.support.harness import Harness

SECRET = "the-county-record-secret-" + "k" * 32
OLD_SECRET = "the-secret-before-rotation-" + "o" * 32


@pytest.fixture(autouse=True)
def record_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every writer (the app, the engine, the services) signs with this secret, as a deployment's do."""
    monkeypatch.setenv("JIAOYING_SECRET_KEY", SECRET)


@dataclass
class World:
    url: str
    warning: str
    sun: int  # acknowledged by SMS
    zhou: int  # acknowledged on his behalf by a duty officer, with a note
    zheng: int  # notified, silent


def callout_of(session: Session, person: str) -> int:
    return session.scalars(select(CalloutRow.id).where(CalloutRow.person_id == person)
                           .order_by(CalloutRow.id.desc())).first()


def answered(h: Harness, **fields: object) -> World:
    wid = h.post(**fields)
    for person in ("sun", "zhou", "zheng"):
        h.expect(person, "sms", "alert")
    h.reply_sms("sun", "收到")
    with transaction(h.url) as session:
        zhou = callout_of(session, "zhou")
        ack.acknowledge_callout(session, h.now(), zhou, via=AckVia.MANUAL, by="liu", note="座机联系上，本人已确认")
    with transaction(h.url) as session:
        return World(h.url, wid, callout_of(session, "sun"), zhou, callout_of(session, "zheng"))


@pytest.fixture
def world(harness: Harness) -> World:  # noqa: F811
    return answered(harness)


def check(url: str, warning: str, keys: Keyring | None = None) -> record_repo.RecordCheck:
    with transaction(url) as session:
        return record_repo.check(session, warning, keys)


def check_all(url: str, keys: Keyring | None = None) -> record_repo.LedgerCheck:
    with transaction(url) as session:
        return record_repo.check_all(session, keys)


def test_an_untouched_record_verifies(world: World) -> None:
    result = check(world.url, world.warning)
    assert (result.problems, result.unverified, result.notes) == ([], [], [])
    assert result.count >= 5 and result.ledger_seq == 1
    with transaction(world.url) as session:
        kinds = [(e.kind, e.key_id) for e in record_repo.events(session, world.warning)]
    assert {k for _, k in kinds} == {RecordKey.from_secret(SECRET).id}  # every event keyed, with the derived key
    everything = check_all(world.url)
    assert everything.problems == [] and everything.unverified == [] and everything.entries == 1


# -- each tampering, done as someone with write access to the database but not the secret would ----------


def rewrite_and_rehash_unkeyed(s: Session, w: World) -> None:
    """Rewrite who posted the warning, recompute the whole chain with plain SHA-256 (as before
    keying), fix the head and drop the seal."""
    prev = GENESIS
    for e in record_repo.events(s, w.warning):
        actor = "agency:someone-else" if e.seq == 1 else e.actor
        digest = event_hash(w.warning, e.seq, e.at, actor, e.kind, e.data, prev)
        s.execute(update(EventRow).where(EventRow.warning_id == w.warning, EventRow.seq == e.seq)
                  .values(actor=actor, prev_hash=prev, hash=digest, key_id=None))
        prev = digest
    s.execute(update(RecordHeadRow).where(RecordHeadRow.record_id == w.warning).values(head=prev, seal=None))


def rewrite_and_rehash_with_a_guessed_key(s: Session, w: World) -> None:
    guess = RecordKey("ignored", b"not the record key")
    prev = GENESIS
    for e in record_repo.events(s, w.warning):
        actor = "agency:someone-else" if e.seq == 1 else e.actor
        mac = event_mac(guess, w.warning, e.seq, e.at, actor, e.kind, e.data, prev)
        s.execute(update(EventRow).where(EventRow.warning_id == w.warning, EventRow.seq == e.seq)
                  .values(actor=actor, prev_hash=prev, hash=mac))
        prev = mac
    s.execute(update(RecordHeadRow).where(RecordHeadRow.record_id == w.warning).values(head=prev))


def truncate_tail_and_fix_head(s: Session, w: World) -> None:
    evs = record_repo.events(s, w.warning)
    s.execute(delete(EventRow).where(EventRow.warning_id == w.warning, EventRow.seq == evs[-1].seq))
    s.execute(update(RecordHeadRow).where(RecordHeadRow.record_id == w.warning)
              .values(count=len(evs) - 1, head=evs[-2].hash))


def delete_head(s: Session, w: World) -> None:
    s.execute(delete(RecordHeadRow).where(RecordHeadRow.record_id == w.warning))


def edit_headline(s: Session, w: World) -> None:
    s.execute(update(WarningRow).where(WarningRow.id == w.warning).values(headline="青溪县气象台解除暴雨预警"))


def edit_ack_note(s: Session, w: World) -> None:
    s.execute(update(CalloutRow).where(CalloutRow.id == w.zhou).values(ack_note="本人短信回复确认"))


def edit_acknowledged_by(s: Session, w: World) -> None:
    s.execute(update(CalloutRow).where(CalloutRow.id == w.sun).values(acknowledged_by="zhou"))


def flip_acknowledged_to_notified(s: Session, w: World) -> None:
    s.execute(update(CalloutRow).where(CalloutRow.id == w.sun).values(
        state="notified", acknowledged_at=None, acknowledged_by=None, ack_via=None, closed_at=None))


def flip_notified_to_acknowledged(s: Session, w: World) -> None:
    at = s.get(CalloutRow, w.zheng).started_at + timedelta(minutes=2)
    s.execute(update(CalloutRow).where(CalloutRow.id == w.zheng).values(
        state="acknowledged", acknowledged_at=at, acknowledged_by="zheng", ack_via="sms", closed_at=at))


def flip_notified_to_cancelled(s: Session, w: World) -> None:
    at = s.get(CalloutRow, w.zheng).started_at + timedelta(minutes=2)
    s.execute(update(CalloutRow).where(CalloutRow.id == w.zheng).values(
        state="cancelled", closed_at=at, closed_reason=f"warning cancelled by {w.warning}"))


def warning_text(w: World, text: str) -> str:
    return text.format(w=w.warning, sun=w.sun, zhou=w.zhou, zheng=w.zheng)


TAMPERINGS: dict[str, tuple[Callable[[Session, World], None], str]] = {
    "rewrite and rehash without the key": (
        rewrite_and_rehash_unkeyed,
        "event 1 (received) carries no key but was written after the record was keyed: it was rewritten without "
        "the key"),
    "rewrite and rehash with a guessed key": (
        rewrite_and_rehash_with_a_guessed_key, "event 1 (received) was changed after it was recorded"),
    "truncate the tail and fix the head": (
        truncate_tail_and_fix_head, "is not the one that was sealed: events were removed from its end"),
    "delete the record's head": (delete_head, "the record's head is missing: its row was deleted"),
    "edit the headline": (
        edit_headline, "warning {w}: headline differs from what was recorded when it was received (event 1)"),
    "edit an acknowledgement's note": (
        edit_ack_note, "call-out {zhou} (zhou): ack_note differs from its acknowledgement"),
    "edit who acknowledged": (
        edit_acknowledged_by, "call-out {sun} (sun): acknowledged_by differs from its acknowledgement"),
    "flip acknowledged to notified": (
        flip_acknowledged_to_notified, "call-out {sun} (sun) was acknowledged (event"),
    "flip notified to acknowledged": (
        flip_notified_to_acknowledged,
        "call-out {zheng} (zheng) is marked acknowledged, but no event records an acknowledgement"),
    "flip notified to cancelled": (
        flip_notified_to_cancelled,
        "call-out {zheng} (zheng) says its warning was cancelled, but no cancellation in the record closed it then"),
}


@pytest.mark.parametrize("how", list(TAMPERINGS))
def test_each_tampering_is_detected(world: World, how: str) -> None:
    tamper, expected = TAMPERINGS[how]
    with transaction(world.url) as session:
        tamper(session, world)
    result = check(world.url, world.warning)
    wanted = warning_text(world, expected)
    assert any(wanted in p for p in result.problems), f"{how}: {wanted!r} not in {result.problems}"
    assert not result.intact
    assert any(wanted in p for p in check_all(world.url).problems)


def test_a_deleted_head_stops_appending_loudly_instead_of_starting_a_second_chain(world: World) -> None:
    """The head row deleted (bad input: a vandalised database): the next append must not chain a
    second event 1 onto the record; it fails, saying why, and the record is left as it was."""
    with transaction(world.url) as session:
        delete_head(session, world)
        before = len(record_repo.events(session, world.warning))
    at = datetime(2026, 7, 16, 4, tzinfo=UTC)
    with pytest.raises(RuntimeError, match="has .* events but no head: its head row was deleted"), \
            transaction(world.url) as session:
        record_repo.append_event(session, world.warning, "recall", "liu", at, {"text": "x"})
    with transaction(world.url) as session:
        assert len(record_repo.events(session, world.warning)) == before


# -- whole records deleted ----------------------------------------------------------------------------------


def delete_record(session: Session, record: str) -> None:
    """Everything of one warning's event, in foreign-key order (what a careful vandal would do)."""
    callouts = select(CalloutRow.id).where(CalloutRow.record_id == record).scalar_subquery()
    session.execute(delete(AttemptRow).where(AttemptRow.callout_id.in_(callouts)))
    session.execute(delete(CalloutRow).where(CalloutRow.record_id == record))
    session.execute(delete(BroadcastOrderRow).where(BroadcastOrderRow.record_id == record))
    session.execute(delete(EventRow).where(EventRow.warning_id == record))
    session.execute(delete(RecordHeadRow).where(RecordHeadRow.record_id == record))
    session.execute(delete(WarningRow).where(WarningRow.root_id == record))
    session.execute(delete(WarningRow).where(WarningRow.id == record))


def three_records(h: Harness) -> list[str]:
    first = answered(h).warning
    ids = [first]
    for n in (2, 3):  # two more events (an orange one each: one official, sun)
        ids.append(h.post(identifier=f"O-{n}", level="orange", areas=["330599100201"]))
        h.expect("sun", "sms", "alert")
        h.reply_sms("sun", "1")
    return ids


def test_a_whole_record_deleted_is_detected_by_the_ledger(harness: Harness) -> None:  # noqa: F811
    ids = three_records(harness)
    assert check_all(harness.url).problems == []
    with transaction(harness.url) as session:
        delete_record(session, ids[1])
    problems = check_all(harness.url).problems
    assert len(problems) == 1 and problems[0].startswith(f"record {ids[1]} (ledger entry 2, received ")
    assert problems[0].endswith("is no longer on file: it was deleted")


def test_a_record_deleted_with_its_ledger_entry_breaks_the_ledger(harness: Harness) -> None:  # noqa: F811
    ids = three_records(harness)
    with transaction(harness.url) as session:
        delete_record(session, ids[1])
        session.execute(delete(LedgerRow).where(LedgerRow.record_id == ids[1]))
    problems = check_all(harness.url).problems
    assert "ledger entry 2 is missing (next found is 3): a record's entry was deleted" in problems
    assert "ledger entry 3 does not follow the entry before it" in problems


def test_the_newest_record_deleted_with_its_entry_and_the_head_fixed_breaks_the_seal(harness: Harness) -> None:  # noqa: F811
    ids = three_records(harness)
    with transaction(harness.url) as session:
        delete_record(session, ids[2])
        session.execute(delete(LedgerRow).where(LedgerRow.record_id == ids[2]))
        second = session.scalar(select(LedgerRow.mac).where(LedgerRow.seq == 2))
        session.execute(update(LedgerHeadRow).where(LedgerHeadRow.id == 1).values(count=2, head=second))
    assert check_all(harness.url).problems == [
        "the ledger's head (2 entries) is not the one that was sealed: entries were removed from its end, or it "
        "was rewritten"]


def test_a_record_taken_out_of_the_ledger_is_detected_on_its_own_too(world: World) -> None:
    with transaction(world.url) as session:
        session.execute(delete(LedgerRow).where(LedgerRow.record_id == world.warning))
    assert "the record has no entry in the ledger of records: its entry was deleted" in \
        check(world.url, world.warning).problems


# -- keys -----------------------------------------------------------------------------------------------------


def test_verifying_with_another_secret_says_signed_with_another_key(world: World) -> None:
    other = Keyring.of(OLD_SECRET)
    result = check(world.url, world.warning, other)
    assert result.problems == []  # not "tampered"
    key = RecordKey.from_secret(SECRET).id
    assert result.unverified[0].startswith(f"events 1–{result.count} signed with another key ({key}), not with "
                                           f"this secret's ({other.current.id})")
    assert check(world.url, world.warning, Keyring.of(OLD_SECRET, SECRET)).intact  # the earlier secret given


# -- a record written before keying ------------------------------------------------------------------------


def write_unkeyed_record(url: str, wid: str, at: datetime) -> None:
    """A warning and its events as the release before keying wrote them (schema 0005, plain SHA-256)."""
    with engine_for(url).begin() as conn:
        meta = sa.MetaData()
        warnings = sa.Table("warnings", meta, autoload_with=conn)
        events = sa.Table("events", meta, autoload_with=conn)
        assert "record_seal" not in warnings.c and "key_id" not in events.c
        prev = GENESIS
        rows = [("received", "local", {"warning": wid, "format": "json", "sender": "qingxi-qx",
                                       "identifier": "OLD-1", "msg_type": "alert", "hazard": "rainstorm",
                                       "level": "orange", "areas": ["330599100201"], "drill": False,
                                       "headline": "旧版本记录的预警"}),
                ("applied", "engine", {"warning": wid, "msg_type": "alert", "started": 0, "superseded": [],
                                       "muted": [], "notices": 0, "cancelled": 0})]
        conn.execute(warnings.insert().values(
            id=wid, sender="qingxi-qx", identifier="OLD-1", msg_type="alert", references=[], hazard="rainstorm",
            level="orange", areas=["330599100201"], headline="旧版本记录的预警", description="", instruction="",
            sent=at, drill=False, status="active", received_at=at, source_format="json", raw="{}",
            record_count=0, record_head=GENESIS, applied_at=at))
        for seq, (kind, actor, data) in enumerate(rows, start=1):
            digest = event_hash(wid, seq, at, actor, kind, data, prev)
            conn.execute(events.insert().values(warning_id=wid, seq=seq, at=at, actor=actor, kind=kind, data=data,
                                                prev_hash=prev, hash=digest))
            prev = digest
        conn.execute(warnings.update().where(warnings.c.id == wid).values(record_count=len(rows), record_head=prev))


def test_a_record_written_before_keying_still_verifies_with_a_note(database_url: str, harness: Harness) -> None:  # noqa: F811
    old = "W20260701-OLD001"
    command.downgrade(_config(database_url), "0005")
    write_unkeyed_record(database_url, old, datetime(2026, 7, 1, 2, 0, tzinfo=UTC))
    upgrade(database_url)
    engine_for(database_url).dispose()  # the schema changed under the pooled connections
    new = answered(harness).warning  # the first record written with the key: the ledger begins
    result = check(database_url, old)
    assert result.intact and result.problems == [] and result.ledger_seq is None
    assert result.notes == ["events 1–2 carry no key: written before the record was keyed, checked by the plain "
                            "hash chain of that time"]
    assert check(database_url, new).intact
    everything = check_all(database_url)
    assert everything.problems == [] and everything.unverified == [] and everything.unkeyed_records == 1
    # a record in flight at the upgrade goes on keyed
    with transaction(database_url) as session:
        record_repo.append_event(session, old, "recall", "liu", datetime(2026, 7, 16, 4, tzinfo=UTC), {"done": "x"})
    assert check(database_url, old).intact
    # … while one edited after the upgrade is still caught by its plain chain
    with transaction(database_url) as session:
        session.execute(update(EventRow).where(EventRow.warning_id == old, EventRow.seq == 1).values(actor="x"))
    assert "event 1 (received) was changed after it was recorded" in check(database_url, old).problems


# -- the command ---------------------------------------------------------------------------------------------


def jiaoying(url: str, *args: str, secret: str | None = SECRET) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JIAOYING_")}
    env |= {"JIAOYING_DATABASE_URL": url, "JIAOYING_SECRET_FILE": "/nonexistent/jiaoying.secret"}
    if secret is not None:
        env["JIAOYING_SECRET_KEY"] = secret
    return subprocess.run([sys.executable, "-m", "dispatcher", "record", *args], env=env, capture_output=True,
                          text=True, timeout=120)


def test_the_record_command_verifies_and_says_what_is_wrong(world: World, tmp_path) -> None:
    ok = jiaoying(world.url, world.warning, "--verify")
    assert ok.returncode == 0, ok.stderr
    assert "hash chain intact, rows agree" in ok.stdout and RecordKey.from_secret(SECRET).id in ok.stdout
    assert "ledger entry 1" in ok.stdout
    assert jiaoying(world.url, "--verify", "--all").returncode == 0

    refused = jiaoying(world.url, world.warning, "--verify", secret=None)
    assert refused.returncode == 2 and "无法校验" in refused.stderr and "no secret key is configured" in refused.stderr

    rotated = jiaoying(world.url, world.warning, "--verify", secret=OLD_SECRET)
    assert rotated.returncode == 2 and "signed with another key" in rotated.stderr
    assert "TAMPERED" not in rotated.stderr
    old_file = tmp_path / "old.secret"
    old_file.write_text(SECRET + "\n")
    assert jiaoying(world.url, world.warning, "--verify", "--old-secret-file", str(old_file),
                    secret=OLD_SECRET).returncode == 0

    with transaction(world.url) as session:
        edit_ack_note(session, world)
    broken = jiaoying(world.url, world.warning, "--verify")
    assert broken.returncode == 1 and "校验未通过" in broken.stderr
    assert f"TAMPERED: call-out {world.zhou} (zhou): ack_note differs" in broken.stderr
    everything = jiaoying(world.url, "--verify", "--all")
    assert everything.returncode == 1 and f"TAMPERED: {world.warning}: call-out {world.zhou}" in everything.stderr


def test_the_record_command_finds_a_deleted_record_with_all(world: World) -> None:
    with transaction(world.url) as session:
        delete_record(session, world.warning)
    gone = jiaoying(world.url, world.warning, "--verify")
    assert gone.returncode == 1 and f"no warning {world.warning}" in gone.stderr
    everything = jiaoying(world.url, "--verify", "--all")
    assert everything.returncode == 1
    assert f"TAMPERED: record {world.warning} (ledger entry 1" in everything.stderr


@pytest.mark.parametrize("rewrite", ["reset", "delete"])
def test_a_rewritten_ledger_head_never_stops_intake_and_is_reported(harness: Harness, rewrite: str) -> None:  # noqa: F811
    """Bad input: the ledger's head reset (or deleted) by hand. The next warning is still accepted
    and called out — a county must not go unwarned over a damaged ledger — and the damage shows."""
    first = answered(harness).warning
    with transaction(harness.url) as session:
        if rewrite == "reset":
            session.execute(update(LedgerHeadRow).values(count=0, head=GENESIS, key_id=None, seal=None))
        else:
            session.execute(delete(LedgerHeadRow))
    second = harness.post(identifier="O-2", level="orange", areas=["330599100201"])
    harness.expect("sun", "sms", "alert")
    harness.reply_sms("sun", "1")
    assert check(harness.url, second).intact
    problems = check_all(harness.url).problems
    assert problems == ["ledger entry 2 was written after the ledger's head had been rewritten (it counted 0 "
                        "entries, not 1)"], problems
    assert check(harness.url, first).intact
