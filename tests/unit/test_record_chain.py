"""The record's keyed chain, its sealed head, the rows it describes and the ledger of records, as
pure functions (dispatcher/domain/record.py); the database side is tests/integration/test_record_integrity.py."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
from datetime import UTC, datetime, timedelta
from typing import Any

from dispatcher.domain.record import (
    GENESIS,
    CalloutFacts,
    Keyring,
    LedgerEntry,
    LedgerHead,
    MessageFacts,
    RecordedEvent,
    RecordKey,
    Supersession,
    check_callouts,
    check_chain,
    check_ledger,
    check_messages,
    event_hash,
    event_mac,
    facts_digest,
    head_seal,
    ledger_mac,
    ledger_seal,
    spans,
)

SECRET = "a-county-secret-" + "x" * 40
KEYS = Keyring.of(SECRET)
T0 = datetime(2026, 7, 16, 3, 12, tzinfo=UTC)
W = "W20260716-TEST01"


def keyed(kinds: list[tuple[str, str, dict[str, Any]]], key: RecordKey = KEYS.current,
          first_id: int = 100) -> list[RecordedEvent]:
    out, prev = [], GENESIS
    for i, (kind, actor, data) in enumerate(kinds, start=1):
        at = T0 + timedelta(seconds=i)
        mac = event_mac(key, W, i, at, actor, kind, data, prev)
        out.append(RecordedEvent(i, at, actor, kind, data, prev, mac, key.id, first_id + i))
        prev = mac
    return out


def unkeyed(kinds: list[tuple[str, str, dict[str, Any]]], first_id: int = 1) -> list[RecordedEvent]:
    out, prev = [], GENESIS
    for i, (kind, actor, data) in enumerate(kinds, start=1):
        at = T0 + timedelta(seconds=i)
        digest = event_hash(W, i, at, actor, kind, data, prev)
        out.append(RecordedEvent(i, at, actor, kind, data, prev, digest, None, first_id + i))
        prev = digest
    return out


THREE = [("received", "agency:qingxi-qx", {"warning": W, "headline": "暴雨红色预警"}),
         ("matched", "rules", {"warning": W, "plans": ["rainstorm-red"]}),
         ("acknowledged", "sun", {"callout": 1, "via": "sms", "note": None})]


def chain(evs: list[RecordedEvent], key: RecordKey = KEYS.current, keys: Keyring = KEYS,
          unkeyed_before: int | None = 1) -> Any:
    head = evs[-1].hash
    return check_chain(W, evs, head, len(evs), head_seal(key, W, len(evs), head), keys, unkeyed_before)


def test_the_record_key_is_derived_from_the_secret_never_the_secret_itself() -> None:
    key = RecordKey.from_secret(SECRET)
    assert key.secret == hmac.new(SECRET.encode(), b"jiaoying record v1", hashlib.sha256).digest()
    assert key.secret != SECRET.encode() and SECRET not in repr(key)
    assert len(key.id) == 8 and key.id == RecordKey.from_secret(SECRET).id
    assert RecordKey.from_secret(SECRET + "!").id != key.id


def test_an_untouched_keyed_record_verifies() -> None:
    found = chain(keyed(THREE))
    assert (found.problems, found.unverified, found.notes) == ([], [], [])


def test_an_event_rewritten_and_its_chain_recomputed_without_the_key_is_detected() -> None:
    evs = keyed(THREE)
    forged = unkeyed([THREE[0][:1] + ("agency:someone-else",) + THREE[0][2:], *THREE[1:]])
    # the forger keeps the rows' ids (an UPDATE in place): written after keying began at id 101
    forged = [dataclasses.replace(f, row_id=e.row_id) for f, e in zip(forged, evs, strict=True)]
    found = check_chain(W, forged, forged[-1].hash, 3, None, KEYS, unkeyed_before=101)
    assert "event 1 (received) carries no key but was written after the record was keyed: it was " \
           "rewritten without the key" in found.problems
    # and recomputed with a key of the forger's own, under the real key's id
    other = dataclasses.replace(RecordKey.from_secret("a guess"), id=KEYS.current.id)
    found = chain(keyed(THREE, key=other), key=other)
    assert found.problems[:3] == [f"event {n} ({k}) was changed after it was recorded"
                                  for n, k in ((1, "received"), (2, "matched"), (3, "acknowledged"))]


def test_removing_the_last_events_and_fixing_the_head_breaks_the_seal() -> None:
    evs = keyed(THREE)
    seal = head_seal(KEYS.current, W, 3, evs[-1].hash)
    found = check_chain(W, evs[:2], evs[1].hash, 2, seal, KEYS, 1)  # count and head fixed, the old seal kept
    assert found.problems == ["the record's head (2 events ending in " + evs[1].hash[:12] + "…) is not the one "
                              "that was sealed: events were removed from its end, or its head was rewritten"]
    found = check_chain(W, evs[:2], evs[1].hash, 2, None, KEYS, 1)
    assert found.problems == ["the record's head carries no seal: its head was rewritten"]


def test_events_written_before_keying_verify_with_a_note() -> None:
    legacy = unkeyed(THREE, first_id=0)  # ids 1-3, before keying began at id 50
    head = legacy[-1].hash
    found = check_chain(W, legacy, head, 3, None, KEYS, unkeyed_before=50)
    assert found.problems == [] and found.unverified == []
    assert found.notes == ["events 1–3 carry no key: written before the record was keyed, checked by the plain "
                           "hash chain of that time"]
    # … and one of them edited is still detected by that plain chain
    edited = [dataclasses.replace(legacy[0], actor="someone"), *legacy[1:]]
    assert "event 1 (received) was changed after it was recorded" in \
        check_chain(W, edited, head, 3, None, KEYS, unkeyed_before=50).problems
    # a keyed event may follow them (a record in flight at the upgrade); an unkeyed one may not follow it
    mixed = [*legacy, *keyed([("recall", "liu", {})], first_id=60)]
    mixed[3] = dataclasses.replace(mixed[3], seq=4, prev_hash=head,
                                   hash=event_mac(KEYS.current, W, 4, mixed[3].at, "liu", "recall", {}, head))
    sealed = head_seal(KEYS.current, W, 4, mixed[3].hash)
    assert check_chain(W, mixed, mixed[3].hash, 4, sealed, KEYS, 50).problems == []


def test_a_record_signed_with_a_rotated_secret_is_unverified_not_tampered() -> None:
    old = Keyring.of("the-secret-before-rotation-" + "y" * 20)
    evs = keyed(THREE, key=old.current)
    found = chain(evs, key=old.current, keys=KEYS)
    assert found.problems == []
    assert found.unverified == [f"events 1–3 signed with another key ({old.current.id}), not with this secret's "
                                f"({KEYS.current.id}): the secret was changed since; verify with the earlier secret "
                                f"(--old-secret-file)"]
    both = Keyring(KEYS.current, (old.current,))
    assert chain(evs, key=old.current, keys=both).unverified == []


def message(status: str = "active", **facts: Any) -> MessageFacts:
    base = {"id": W, "sender": "qingxi-qx", "identifier": "X-1", "msg_type": "alert", "references": [],
            "root_id": None, "hazard": "rainstorm", "level": "red", "areas": ["330599100"],
            "headline": "暴雨红色预警", "description": "", "instruction": "", "sent": T0, "expires": None,
            "drill": False, "received_at": T0, "api_key_id": None, "source_format": "json", "raw": "{}"}
    return MessageFacts(W, status, base | facts)


def received(m: MessageFacts) -> RecordedEvent:
    data = {k: m.facts[k] for k in ("sender", "identifier", "msg_type", "hazard", "level", "areas", "drill",
                                     "headline")}
    data |= {"warning": m.id, "sent": T0.isoformat(), "expires": None, "row": facts_digest(m.facts)}
    return keyed([("received", "local", data)])[0]


def test_a_warning_row_must_agree_with_its_received_event() -> None:
    m = message()
    ev = received(m)
    assert check_messages([ev], [m]) == []
    assert check_messages([ev], [message(headline="已解除")]) == [
        f"warning {W}: headline differs from what was recorded when it was received (event 1)"]
    assert check_messages([ev], [message(sent=T0 + timedelta(hours=1))]) == [
        f"warning {W}: sent differs from what was recorded when it was received (event 1)"]
    assert check_messages([ev], [message(instruction="无需转移")]) == [
        f"warning {W}: description, instruction, references, times of receipt, key or source text differs from "
        f"what was recorded when it was received (event 1)"]
    assert check_messages([ev], [message(status="cancelled")]) == [
        f"warning {W} is marked 'cancelled', but by the record it is 'active' (event 1)"]
    assert check_messages([ev], []) == [f"warning {W}, received in event 1, is no longer on file (deleted)"]


def callout(**fields: Any) -> CalloutFacts:
    return CalloutFacts(**({"id": 1, "warning_id": W, "person_id": "sun", "state": "notified", "started_at": T0}
                           | fields))


def test_a_call_out_row_must_agree_with_the_events_that_set_it() -> None:
    evs = keyed([("applied", "engine", {"warning": W, "msg_type": "alert", "started": 1}),
                 ("acknowledged", "liu", {"callout": 1, "via": "manual", "note": "座机已联系"})])
    at = evs[1].at
    done = callout(state="acknowledged", acknowledged_at=at, acknowledged_by="liu", ack_via="manual",
                   ack_note="座机已联系", closed_at=at)
    assert check_callouts(evs, [done], {}) == []
    assert check_callouts(evs, [dataclasses.replace(done, ack_note="本人已确认", acknowledged_by="sun")], {}) == [
        "call-out 1 (sun): acknowledged_by, ack_note differ from its acknowledgement (event 2)"]
    assert check_callouts(evs, [callout(state="unreached", unreached_at=at)], {}) == [
        "call-out 1 (sun) was acknowledged (event 2), but is marked 'unreached'",
        "call-out 1 (sun) is marked unreached, but no event records its last step passing"]
    assert check_callouts(evs[:1], [done], {}) == [
        "call-out 1 (sun) is marked acknowledged, but no event records an acknowledgement"]
    assert check_callouts(evs[:1], [], {}) == [f"warning {W} started 1 call-outs (event 1); 0 are on file"]


def test_a_cancelled_call_out_needs_the_cancellation_or_supersession_that_closed_it() -> None:
    evs = keyed([("applied", "engine", {"warning": W, "msg_type": "alert", "started": 2}),
                 ("cancelled", "admin:chen", {"warnings": [W], "callouts_cancelled": 1, "notices": 0})])
    at = evs[1].at
    closed = callout(state="cancelled", closed_at=at, closed_reason=f"warning cancelled by {W}")
    other = callout(id=2, person_id="zhou", state="cancelled", closed_at=T0, closed_reason="superseded by W2 (red)")
    supersessions = {"W2": Supersession("red", frozenset({2}))}
    assert check_callouts(evs, [closed, other], supersessions) == []
    assert check_callouts(evs, [closed, other], {"W2": Supersession("red", frozenset())}) == [
        "call-out 2 (zhou) says it was superseded by W2, but W2's record does not list it"]
    forged = dataclasses.replace(closed, closed_at=T0)  # closed when nothing was cancelled
    assert check_callouts(evs, [forged, other], supersessions) == [
        "call-out 1 (sun) says its warning was cancelled, but no cancellation in the record closed it then",
        "event 2 closed 1 call-outs as cancelled; 0 are on file as closed then"]
    reopened = callout(state="notified")  # flipped back open after the cancel
    assert check_callouts(evs, [reopened, other], supersessions) == [
        "call-out 1 (sun) is marked 'notified', but every open call-out was closed as cancelled after it started "
        "(event 2)", "event 2 closed 1 call-outs as cancelled; 0 are on file as closed then"]


def ledger(n: int, key: RecordKey = KEYS.current) -> tuple[list[LedgerEntry], LedgerHead]:
    entries, prev = [], GENESIS
    for seq in range(1, n + 1):
        data = {"first": "ab" * 32}
        mac = ledger_mac(key, seq, f"W{seq}", T0, data, prev)
        entries.append(LedgerEntry(seq, f"W{seq}", T0, key.id, data, prev, mac))
        prev = mac
    return entries, LedgerHead(n, prev, key.id, ledger_seal(key, n, prev))


def test_the_ledger_shows_an_entry_deleted_in_the_middle_or_at_the_end() -> None:
    entries, head = ledger(3)
    assert check_ledger(entries, head, KEYS).problems == []
    gap = check_ledger([entries[0], entries[2]], head, KEYS).problems
    assert "ledger entry 2 is missing (next found is 3): a record's entry was deleted" in gap
    assert "ledger entry 3 does not follow the entry before it" in gap
    # the last entry removed and the head's count and MAC fixed: the seal no longer matches
    fixed = LedgerHead(2, entries[1].mac, head.key_id, head.seal)
    assert check_ledger(entries[:2], fixed, KEYS).problems == [
        "the ledger's head (2 entries) is not the one that was sealed: entries were removed from its end, or it "
        "was rewritten"]
    edited = dataclasses.replace(entries[1], record_id="W9")
    assert check_ledger([entries[0], edited, entries[2]], head, KEYS).problems == [
        "ledger entry 2 (record W9) was changed after it was written"]


def test_spans() -> None:
    assert spans([1, 2, 3, 7, 9, 10]) == "1–3, 7, 9–10"
    assert spans([]) == ""
