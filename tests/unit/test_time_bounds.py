"""Times are bounded at intake (SPEC 6): each bad input below was accepted and then made every
engine pass die on OverflowError in the duty rota, or answered 500 at once. JSON and CAP share
the bounds; CAP errors name the CAP element."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from dispatcher.intake.cap import parse_cap
from dispatcher.intake.errors import IntakeError
from dispatcher.intake.schema import WarningIn, check_sent, parse_warning_dict, parse_warning_json, read_json
from dispatcher.services.preview import at_problem
from tests.conftest import FIXED_NOW

CAP = Path(__file__).parents[1] / "fixtures" / "cap"
ALL_CAP = sorted(p.stem for p in CAP.glob("*.xml") if p.stem.startswith(("oasis-", "cn-")))


def warning(**fields: Any) -> dict[str, Any]:
    body = {"sender": "qingxi-qx", "identifier": "QX-1", "hazard": "rainstorm", "level": "red",
            "areas": ["330599100"], "headline": "暴雨红色预警", "sent": "2026-07-16T11:10:00+08:00",
            "expires": "2026-07-16T23:00:00+08:00"}
    return body | fields


def problems(data: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(IntakeError) as caught:
        parse_warning_dict(data)
    assert caught.value.status == 422
    return {p.field: p.message for p in caught.value.problems}


def cap_refused(name: str, old: str, new: str) -> IntakeError:
    text = (CAP / f"{name}.xml").read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {name}"
    with pytest.raises(IntakeError) as caught:
        parse_warning_dict(parse_cap(text.replace(old, new).encode()))
    assert caught.value.status == 422
    return caught.value


# -- sent: not before 2000, convertible to UTC -------------------------------------------------


@pytest.mark.parametrize("sent", [
    "0001-01-03T00:00:00+00:00",  # bad input: the probe's year-1 sent (the rota's "a week before" overflowed)
    "0001-01-01T00:00:00+14:00",  # bad input: no UTC form at all (converting it raised OverflowError: a 500)
    "1999-12-31T23:59:59+00:00",  # bad input: before the bound
])
def test_a_sent_time_before_2000_is_422_naming_sent(sent: str) -> None:
    assert problems(warning(sent=sent, expires=None)) == {
        "sent": f"{sent} is before 2000-01-01; send the time the warning was issued, e.g. 2026-07-16T03:10:00+08:00"}


def test_a_sent_time_with_no_utc_form_at_the_top_of_the_calendar_is_422() -> None:
    # bad input: 9999-12-31 23:00 at -05:00 is in year 10000 in UTC
    found = problems(warning(sent="9999-12-31T23:00:00-05:00", expires=None))
    assert found == {"sent": "9999-12-31T23:00:00-05:00 is out of range; send the time the warning was issued, "
                             "e.g. 2026-07-16T03:10:00+08:00"}


def test_year_2000_and_a_past_expiry_are_accepted_by_validation() -> None:
    # an already expired warning is valid input: what it calls is the engine's business
    draft = parse_warning_dict(warning(sent="2000-01-01T00:00:00+00:00", expires="2000-01-01T06:00:00+00:00"))
    assert draft.sent == datetime(2000, 1, 1, tzinfo=UTC)


# -- expires: after sent, within 366 days ---------------------------------------------------------


def test_expires_not_after_sent_is_422() -> None:
    # bad input: expires equal to sent
    assert problems(warning(expires="2026-07-16T11:10:00+08:00")) == {"expires": "must be later than sent"}


def test_expires_more_than_366_days_after_sent_is_422() -> None:
    # bad input: a warning "valid" until 9999
    assert problems(warning(expires="9999-12-31T00:00:00+00:00")) == {
        "expires": "9999-12-31T00:00:00+00:00 is more than 366 days after sent (2026-07-16T11:10:00+08:00); "
                   "a warning lasts at most 366 days"}


def test_expires_366_days_after_sent_is_accepted() -> None:
    draft = parse_warning_dict(warning(expires="2027-07-17T11:10:00+08:00"))
    assert draft.expires - draft.sent == timedelta(days=366)


def test_expires_out_of_range_is_422_naming_expires() -> None:
    # bad input: year 1 at +14:00 as the expiry, with a good sent
    assert problems(warning(expires="0001-01-01T00:00:00+14:00")) == {
        "expires": "0001-01-01T00:00:00+14:00 is before 2000-01-01; send the time the warning was issued, "
                   "e.g. 2026-07-16T03:10:00+08:00"}


# -- sent against the server's clock ---------------------------------------------------------------


def draft(sent: str) -> WarningIn:
    return parse_warning_dict(warning(sent=sent, expires=None))


def test_sent_more_than_five_minutes_ahead_of_the_clock_is_422_naming_sent() -> None:
    # bad input: the probe's 9999-12-31 (every engine pass died in the duty rota)
    with pytest.raises(IntakeError) as caught:
        check_sent(draft("9999-12-31T00:00:00+00:00"), FIXED_NOW)
    assert caught.value.status == 422
    assert [(p.field, p.message) for p in caught.value.problems] == [(
        "sent", "9999-12-31T00:00:00+00:00 is more than 5 minutes ahead of this server's clock "
                "(2026-07-16T03:12:00+00:00); send the time the warning was issued, e.g. 2026-07-16T03:10:00+08:00")]


def test_sent_up_to_five_minutes_ahead_of_the_clock_is_accepted() -> None:
    check_sent(draft("2026-07-16T11:17:00+08:00"), FIXED_NOW)  # exactly 5 minutes: a sender's clock skew
    with pytest.raises(IntakeError):
        check_sent(draft("2026-07-16T11:17:01+08:00"), FIXED_NOW)  # bad input: one second more


def test_old_and_expired_warnings_pass_the_clock_check() -> None:
    check_sent(draft("2026-07-10T11:10:00+08:00"), FIXED_NOW)


# -- CAP: the same bounds, naming the CAP element ---------------------------------------------------


@pytest.mark.parametrize("name", ALL_CAP)
def test_every_cap_fixture_is_within_the_bounds(name: str) -> None:
    parse_warning_dict(parse_cap((CAP / f"{name}.xml").read_bytes()))


def test_cap_sent_in_year_1_at_plus_14_is_422_naming_sent() -> None:
    # bad input: <sent>0001-01-01T00:00:00+14:00</sent>
    error = cap_refused("oasis-alert", "<sent>2026-07-16T03:10:00+08:00</sent>",
                        "<sent>0001-01-01T00:00:00+14:00</sent>")
    assert [p.field for p in error.problems] == ["sent"]
    assert error.problems[0].message.startswith("0001-01-01T00:00:00+14:00 is before 2000-01-01")


def test_cap_chinese_basic_time_in_year_1_is_422_naming_sent() -> None:
    # bad input: the national profile's YYYYMMDDhhmmss form in year 1, read as Beijing time
    error = cap_refused("cn-update", "<sent>20260716054000</sent>", "<sent>00010101000000</sent>")
    assert [p.field for p in error.problems] == ["sent"]
    assert error.problems[0].message.startswith("0001-01-01T00:00:00+08:00 is before 2000-01-01")


def test_cap_expires_years_after_sent_is_422_naming_info_expires() -> None:
    # bad input: <expires>9999-12-31T00:00:00+08:00</expires>
    error = cap_refused("oasis-alert", "<expires>2026-07-16T15:00:00+08:00</expires>",
                        "<expires>9999-12-31T00:00:00+08:00</expires>")
    assert [p.field for p in error.problems] == ["info.expires"]
    assert "is more than 366 days after sent" in error.problems[0].message


def test_cap_expires_before_sent_is_422_naming_info_expires() -> None:
    # bad input: an expiry an hour before the alert was sent
    error = cap_refused("oasis-alert", "<expires>2026-07-16T15:00:00+08:00</expires>",
                        "<expires>2026-07-16T02:10:00+08:00</expires>")
    assert [(p.field, p.message) for p in error.problems] == [("info.expires", "must be later than sent")]


# -- the JSON body itself ---------------------------------------------------------------------------


def test_json_nested_100000_deep_is_400_not_a_recursion_error() -> None:
    # bad input: 100,000 nested arrays (200 kB, under the body limit)
    with pytest.raises(IntakeError) as caught:
        read_json(b"[" * 100_000 + b"]" * 100_000)
    assert caught.value.status == 400
    assert caught.value.message == ("malformed JSON: nested too deeply; a warning is one object of plain values "
                                    "and lists")


@pytest.mark.parametrize("field", ["sent", "drill", "headline", "areas"])
def test_a_5000_digit_number_is_422_naming_its_field(field: str) -> None:
    # bad input: Python refuses to read a 5,000-digit integer (ValueError, a 500)
    body = f'{{"sender": "qingxi-qx", "identifier": "QX-1", "{field}": {"9" * 5000}}}'
    with pytest.raises(IntakeError) as caught:
        parse_warning_json(body.encode())
    assert caught.value.status == 422
    assert field in {p.field for p in caught.value.problems}


def test_a_5000_digit_float_is_422_too() -> None:
    # bad input: 5,000 digits before a decimal point
    with pytest.raises(IntakeError) as caught:
        parse_warning_json(('{"sender": "a", "identifier": "b", "sent": %s.5}' % ("9" * 5000)).encode())
    assert "sent" in {p.field for p in caught.value.problems}


def test_a_good_json_body_reads_as_before() -> None:
    import json

    draft = parse_warning_json(json.dumps(warning()).encode())
    assert draft.sent == datetime(2026, 7, 16, 3, 10, tzinfo=UTC)


# -- the preview's time -----------------------------------------------------------------------------


@pytest.mark.parametrize(("at", "message"), [
    (datetime(2026, 7, 16, 3, 0), "2026-07-16T03:00:00 must carry a UTC offset, e.g. 2026-07-16T03:10:00+08:00"),
    (datetime(9999, 12, 31, 23, tzinfo=UTC), "9999-12-31T23:00:00+00:00 is outside the years a preview covers "
                                             "(2000 to 2099)"),
    (datetime.fromisoformat("0001-01-01T00:00:00+14:00"), "0001-01-01T00:00:00+14:00 is outside the years a "
                                                          "preview covers (2000 to 2099)"),
])
def test_preview_times_are_bounded(at: datetime, message: str) -> None:
    # bad input: a naive time, year 9999, year 1 at +14:00
    assert at_problem(at) == message


def test_preview_now_is_fine() -> None:
    assert at_problem(FIXED_NOW) is None
