"""Phone numbers as counties write them in a workbook, and as the site files store them (E.164).

A cell may hold ``13905720001`` (text or an Excel number), ``139 0572 0001``, ``+86-139…``,
``0572-5012345`` or ``(0572)5012345``; several numbers in one cell are separated by 、，,;；/ or a
line break. libphonenumber reads them in region CN and writes E.164 (``+8613905720001``); its
answers are cached, as an import reads each number several times (the workbook's, the roster's).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

import phonenumbers
from phonenumbers import PhoneNumberType

MOBILE, LANDLINE, SATELLITE = "mobile", "landline", "satellite"
KINDS = (MOBILE, LANDLINE, SATELLITE)

_SEPARATORS = re.compile(r"[、，,;；/／\n\r]+")
# Satellite phone numbers: 天通 (+86 1740), 海事卫星 via China Satcom (+86 1349), Inmarsat (+870),
# the global satellite services under +881 (Iridium, Globalstar) and Thuraya (+882 16).
SATELLITE_PREFIXES = ("+861740", "+861349", "+870", "+881", "+88216")


@dataclass(frozen=True)
class Number:
    """One number of a person: E.164 and its kind (mobile, landline or satellite)."""

    e164: str
    kind: str


def split_numbers(text: str) -> list[str]:
    """The numbers written in one cell, in order."""
    return [part.strip() for part in _SEPARATORS.split(text) if part.strip()]


@lru_cache(maxsize=65536)
def to_e164(text: str) -> str | None:
    """The number in E.164, or None when it is not a valid phone number."""
    try:
        number = phonenumbers.parse(text, "CN")
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


@lru_cache(maxsize=65536)
def worked_out_kind(e164: str) -> str:
    """What the site loader makes of a number written without a kind: landline for what
    libphonenumber knows as a fixed line, else mobile (a satellite phone must say so)."""
    try:
        number = phonenumbers.parse(e164, "CN")
    except phonenumbers.NumberParseException:
        return MOBILE
    return LANDLINE if phonenumbers.number_type(number) == PhoneNumberType.FIXED_LINE else MOBILE


def is_satellite(e164: str) -> bool:
    """Whether a number (E.164) is a satellite phone's (see ``SATELLITE_PREFIXES``)."""
    return e164.startswith(SATELLITE_PREFIXES)


def for_display(e164: str) -> str:
    """How the number is written in a workbook: mainland mobiles as 11 digits, landlines as
    0572-5012345, anything else in E.164."""
    try:
        number = phonenumbers.parse(e164, "CN")
    except phonenumbers.NumberParseException:
        return e164
    if number.country_code != 86:
        return e164
    national = phonenumbers.national_significant_number(number)
    area = phonenumbers.length_of_geographical_area_code(number)
    return f"0{national[:area]}-{national[area:]}" if area else national


def numbers_of(person: dict[str, object]) -> list[Number]:
    """A person's numbers as people.yaml writes them (``phone`` then ``phones``), in E.164 with
    their kinds; a number that cannot be read is left out."""
    out: list[Number] = []
    phone = person.get("phone")
    if isinstance(phone, str | int) and not isinstance(phone, bool):
        e164 = to_e164(str(phone))
        if e164:
            out.append(Number(e164, worked_out_kind(e164)))
    phones = person.get("phones")
    for entry in phones if isinstance(phones, list) else []:
        text, kind = entry, None
        if isinstance(entry, dict):
            text, kind = entry.get("number"), entry.get("kind")
        if not isinstance(text, str | int) or isinstance(text, bool):
            continue
        e164 = to_e164(str(text))
        if e164:
            out.append(Number(e164, kind if kind in KINDS else worked_out_kind(e164)))
    return out
