"""CAP 1.2 XML -> the JSON form of a warning (SPEC 4.1); the caller validates it with
``parse_warning_dict``, so both formats share one set of field checks.

Two dialects arrive. The Chinese national profile (GB/T 35965.1) is recognised by a root
without a namespace, a ``senderCode`` element, or a colour in ``info/severity``; anything else
must be OASIS CAP 1.2 in its namespace. The dialect decides the sender and how times without
an offset are read; the other differences (references, severity, geocode lists) are told
apart by the form of the value, so either dialect's form is read wherever it turns up.

============  ====================================  ======================================
JSON field    OASIS CAP 1.2                         Chinese profile (GB/T 35965.1)
============  ====================================  ======================================
sender        sender                                senderCode, else sender
identifier    identifier                            identifier
msg_type      msgType Alert/Update/Cancel -> alert/update/cancel (Ack, Error -> 422)
drill         status Actual -> false, Exercise/Test -> true (System, Draft -> 422)
references    ``sender,identifier,sent`` triples    identifiers, comma- or space-separated
sent          sent (xs:dateTime with an offset)     sent or sendTime; ``YYYY-MM-DD HH:MM:SS
expires       info/expires                          +08:00``; no offset or ``YYYYMMDDhhmmss``
                                                    = Beijing time (+08:00)
hazard        1 eventCode whose value is a hazard code or Chinese name  2 eventCode with a CMA
              TTLL code (TT)  3 event: code, Chinese name, or 暴雨红色预警(信号) forms
level         1 eventCode/parameter named level/colour/预警级别/...  2 CMA TTLL code (LL)
              3 severity Red/Orange/Yellow/Blue  4 colour in event  5 severity Extreme/Severe/
              Moderate/Minor -> red/orange/yellow/blue
areas         every area/geocode value (or comma-separated item) that is a division code,
              normalised; other geocode schemes are ignored
zones         area/geocode values whose valueName is exactly ``zone`` (or ``jiaoying:zone``,
              危险区, 隐患点, 小流域): the site's hazard-zone ids
via           info/parameter ``jiaoying_via``: the site ids a forwarded warning passed through
drill_        info/parameter ``jiaoying_drill_broadcast`` (true/false, 1/0, yes/no, 是/否): a drill
 broadcast    (status Exercise/Test) asks for the rural broadcast
headline      headline, else event
description   description (a Cancel without info: the alert's note)
instruction   instruction
============  ====================================  ======================================

The info used is the first whose language starts with ``zh``, else the first. A Cancel may
carry no info; its hazard, level, areas and headline are then left out (the cancelled warning
supplies them), and in a Cancel they are best effort: what cannot be read is left out too.

Errors: 400 (``IntakeError.malformed``) for a body that cannot be read as CAP 1.2 - malformed
or unsafe XML, another root or namespace, CAP 1.0/1.1; 422 (``IntakeError.invalid``) naming
the CAP element for a readable alert with bad or missing values - times included, which are
bounded as every warning's are (``intake.schema``): ``sent`` on or after 2000-01-01, ``expires``
after ``sent`` and at most 366 days later (how far ahead of the clock ``sent`` may be is checked
at intake, with the server's clock). ``onset`` and ``effective`` are not read.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from typing import Any
from xml.etree.ElementTree import Element, ParseError

import defusedxml.ElementTree as DefusedET
from defusedxml import DefusedXmlException, EntitiesForbidden, ExternalReferenceForbidden

from ..domain.areas import normalize_code
from ..domain.hazards import (
    CMA_LEVEL_CODES,
    CMA_TYPE_CODES,
    Hazard,
    Level,
    accepted_hazards,
    parse_hazard,
    parse_level,
)
from .errors import FieldProblem, IntakeError
from .schema import span_problem, time_problem

CAP12_NS = "urn:oasis:names:tc:emergency:cap:1.2"
_OLD_CAP = {"urn:oasis:names:tc:emergency:cap:1.1": "1.1", "urn:oasis:names:tc:emergency:cap:1.0": "1.0",
            "http://www.incident.com/cap/1.0": "1.0"}
BEIJING = timezone(timedelta(hours=8), "Asia/Shanghai")
_XML_ENCODING = re.compile(rb"""^\s*<\?xml[^>]*?encoding\s*=\s*["']([A-Za-z0-9._-]+)["']""")
_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})?$")
_BASIC_TIME = re.compile(r"^\d{14}$")
_CMA_CODE = re.compile(r"^\d{4}$")
# 暴雨 / 暴雨预警 / 暴雨红色预警信号 / 解除暴雨红色预警 / 地质灾害气象风险黄色预警
_EVENT = re.compile(
    r"^(?:解除)?(?P<name>.+?)(?:气象风险|气象)?(?P<colour>[红橙黄蓝]色?)?(?:预警)?(?:信号)?(?:解除)?$")
_SEPARATORS = re.compile(r"[\s,，;；、]+")
_COLOURS = {"red": Level.RED, "orange": Level.ORANGE, "yellow": Level.YELLOW, "blue": Level.BLUE}
_OASIS_SEVERITY = {
    "extreme": Level.RED, "severe": Level.ORANGE, "moderate": Level.YELLOW, "minor": Level.BLUE}
# valueNames (lower case, without "_", "-" or spaces) of an eventCode/parameter holding the level;
# matched whole, so that e.g. a hydrological "waterLevel" parameter is not taken for one.
_LEVEL_NAMES = {"level", "colour", "color", "alertlevel", "warninglevel", "alertcolour", "alertcolor",
                "级别", "等级", "颜色", "预警级别", "预警等级", "预警颜色"}
_DIVISION_NAMES = ("2260", "10114", "division", "adcode", "areacode", "区划", "行政区")
_MSG_TYPES = {"alert": "alert", "update": "update", "cancel": "cancel"}
_DRILL = {"actual": False, "exercise": True, "test": True}
_ROMAN = str.maketrans({"Ⅰ": "I", "Ⅱ": "II", "Ⅲ": "III", "Ⅳ": "IV"})


def parse_cap(body: bytes) -> dict[str, Any]:
    """The JSON form (keys of WarningIn, plain JSON values) of a CAP 1.2 document."""
    root = _read_xml(body)
    _check_root(root)
    chinese = _is_chinese(root)
    fields = _envelope(root, chinese)
    info = _pick_info(root)
    if info is None:
        if fields["msg_type"] != "cancel":
            raise IntakeError.invalid("info", f"an {fields['msg_type']} must carry an <info> block")
        fields.update(description=_text(root, "note"), instruction="", expires=None)
        return fields
    fields.update(_from_info(info, chinese, best_effort=fields["msg_type"] == "cancel"))
    if fields["expires"] and (problem := span_problem(
            datetime.fromisoformat(fields["sent"]), datetime.fromisoformat(fields["expires"]))):
        raise IntakeError.invalid("info.expires", problem)
    return fields


# -- reading the document ------------------------------------------------------------------


def _read_xml(body: bytes) -> Element:
    try:
        # defusedxml's defaults refuse entity declarations and external references.
        return DefusedET.fromstring(_decoded(body), forbid_dtd=False)
    except EntitiesForbidden as exc:
        if exc.sysid or exc.pubid:
            raise IntakeError.malformed(
                f"external entity references are not accepted (entity {exc.name!r} "
                f"points to {exc.sysid or exc.pubid!r})") from None
        raise IntakeError.malformed(
            "XML entity declarations are not accepted (possible entity-expansion attack)") from None
    except ExternalReferenceForbidden:
        raise IntakeError.malformed("external entity references are not accepted") from None
    except DefusedXmlException as exc:
        raise IntakeError.malformed(f"unsafe XML is not accepted: {exc}") from None
    except (ParseError, ValueError, LookupError) as exc:
        raise IntakeError.malformed(f"malformed XML: {exc}") from None


def _decoded(body: bytes) -> bytes | str:
    """Expat reads no multi-byte encoding but UTF-8/16, and Chinese feeds often declare
    GB2312/GBK: decode those here (as GB18030, their superset) and hand over text."""
    match = _XML_ENCODING.match(body)
    encoding = match.group(1).decode().lower() if match else "utf-8"
    if encoding.startswith("utf") or encoding in ("us-ascii", "ascii", "iso-8859-1", "latin-1"):
        return body
    codec = "gb18030" if encoding in ("gb2312", "gbk", "cp936") else encoding
    try:
        return body.decode(codec)
    except LookupError:
        raise IntakeError.malformed(f"malformed XML: unknown encoding {encoding!r}") from None
    except UnicodeDecodeError as exc:
        raise IntakeError.malformed(f"malformed XML: not valid {encoding} at byte {exc.start}") from None


def _check_root(root: Element) -> None:
    namespace, local = _split_tag(root.tag)
    if namespace in _OLD_CAP:
        raise IntakeError.malformed(
            f"CAP {_OLD_CAP[namespace]} is not accepted; only CAP 1.2 ({CAP12_NS}) is")
    if local != "alert" or namespace not in ("", CAP12_NS):
        found = f"<{local}>" + (f" in namespace {namespace!r}" if namespace else "")
        raise IntakeError.malformed(
            f"not a CAP 1.2 alert: the root element is {found}; expected <alert> in namespace "
            f"{CAP12_NS} (or without a namespace, as in the Chinese national profile)")


def _is_chinese(root: Element) -> bool:
    colours = (_text(info, "severity").lower() in _COLOURS for info in _children(root, "info"))
    return not root.tag.startswith("{") or _has(root, "senderCode") or any(colours)


def _split_tag(tag: str) -> tuple[str, str]:
    if tag.startswith("{"):
        namespace, _, local = tag[1:].partition("}")
        return namespace, local
    return "", tag


def _children(element: Element, name: str) -> list[Element]:
    return [child for child in element if isinstance(child.tag, str) and _split_tag(child.tag)[1] == name]


def _has(element: Element, name: str) -> bool:
    return bool(_children(element, name))


def _text(element: Element, *names: str) -> str:
    """The text of the first child with one of ``names`` that has any, else ""."""
    for name in names:
        for child in _children(element, name):
            if text := (child.text or "").strip():
                return text
    return ""


def _pairs(element: Element, name: str) -> list[tuple[str, str]]:
    """valueName/value pairs of eventCode, parameter or geocode; a bare geocode has no name."""
    return [(_text(child, "valueName"), _text(child, "value") if _has(child, "value") else
             (child.text or "").strip()) for child in _children(element, name)]


def _pick_info(root: Element) -> Element | None:
    infos = _children(root, "info")
    chinese = [info for info in infos if _text(info, "language").lower().startswith("zh")]
    return (chinese or infos or [None])[0]


# -- the envelope ----------------------------------------------------------------------------


def _envelope(root: Element, chinese: bool) -> dict[str, Any]:
    required = {
        "identifier": _text(root, "identifier"),
        "sender": _text(root, "senderCode", "sender") if chinese else _text(root, "sender"),
        "sent": _text(root, "sent", "sendTime"),
        "status": _text(root, "status"),
        "msgType": _text(root, "msgType"),
    }
    missing = [FieldProblem(name, f"is required: a CAP alert must carry <{name}>")
               for name, value in required.items() if not value]
    if missing:
        raise IntakeError.many(missing)
    return {
        "sender": required["sender"],
        "identifier": required["identifier"],
        "msg_type": _one_of("msgType", required["msgType"], _MSG_TYPES, ("ack", "error"), "not warnings"),
        "references": _references(_text(root, "references")),
        "sent": _time(required["sent"], "sent", chinese),
        "drill": _one_of("status", required["status"], _DRILL, ("system", "draft"), "not dispatched"),
    }


def _one_of(element: str, value: str, accepted: dict[str, Any], refused: tuple[str, ...], why: str) -> Any:
    """A CAP code value (case-insensitive) mapped through ``accepted``; 422 names the rest."""
    if value.lower() in accepted:
        return accepted[value.lower()]
    problem = f"{value} messages are {why}" if value.lower() in refused else f"unknown {element} {value!r}"
    raise IntakeError.invalid(element, f"{problem}; accepted: {', '.join(map(str.title, accepted))}")


def _references(value: str) -> list[str]:
    """OASIS ``sender,identifier,sent`` triples, or bare identifiers (Chinese profile)."""
    identifiers: list[str] = []
    for token in value.split():
        parts = token.split(",")
        if len(parts) == 3 and (_TIME.match(parts[2]) or _BASIC_TIME.match(parts[2])):
            identifiers.append(parts[1])
        else:
            identifiers.extend(part for part in parts if part)
    return list(dict.fromkeys(identifiers))


def _time(value: str, element: str, chinese: bool) -> str:
    expected = "e.g. 2026-07-16T03:10:00+08:00" + (
        ", 2026-07-16 03:10:00+08:00 or 20260716031000" if chinese else "")
    try:
        if _BASIC_TIME.match(value):
            moment = datetime.strptime(value, "%Y%m%d%H%M%S")
        elif _TIME.match(value):
            moment = datetime.fromisoformat(value)
        else:
            raise ValueError
    except ValueError:
        raise IntakeError.invalid(element, f"{value!r} is not a time; expected {expected}") from None
    if moment.tzinfo is None:
        if not chinese:
            raise IntakeError.invalid(element, f"{value!r} must carry a UTC offset, {expected}")
        moment = moment.replace(tzinfo=BEIJING)
    if problem := time_problem(moment):  # the bounds of every warning's times (see intake.schema)
        raise IntakeError.invalid(element, problem)
    return moment.isoformat()


# -- the info block --------------------------------------------------------------------------


def _from_info(info: Element, chinese: bool, best_effort: bool) -> dict[str, Any]:
    event = _text(info, "event")
    codes = _pairs(info, "eventCode")
    expires = _text(info, "expires")
    fields: dict[str, Any] = {
        "headline": _text(info, "headline") or event,
        "description": _text(info, "description"),
        "instruction": _text(info, "instruction"),
        "expires": _time(expires, "info.expires", chinese) if expires else None,
    }
    readers = {
        "hazard": lambda: _hazard(event, codes).value,
        "level": lambda: _level(event, _text(info, "severity"), codes, _pairs(info, "parameter")).value,
        "areas": lambda: _areas(info),
    }
    if zones := _zones(info):
        fields["zones"] = zones
    if via := _via(info):
        fields["via"] = via
    if (asked := _drill_broadcast(info)) is not None:
        fields["drill_broadcast"] = asked
    for name, read in readers.items():
        try:
            fields[name] = read()
        except IntakeError:
            if not best_effort:
                raise
    if not fields["headline"]:
        del fields["headline"]
    return fields


def _cma(value: str) -> tuple[Hazard | None, Level | None]:
    """A CMA feed TTLL code such as 0204 (rainstorm, red); (None, None) when it is not one."""
    if not _CMA_CODE.match(value) or value[:2] not in CMA_TYPE_CODES:
        return None, None
    return CMA_TYPE_CODES[value[:2]], CMA_LEVEL_CODES.get(value[2:])


def _event_parts(event: str) -> tuple[str, str]:
    match = _EVENT.match(event.replace(" ", ""))
    return (match["name"], match["colour"] or "") if match else (event, "")


def _hazard(event: str, codes: list[tuple[str, str]]) -> Hazard:
    for _, value in codes:
        try:
            return parse_hazard(value)
        except ValueError:
            pass
    for _, value in codes:
        if (hazard := _cma(value)[0]) is not None:
            return hazard
    name = _event_parts(event)[0]
    for candidate in (event, name, name.removesuffix("灾害")):
        try:
            return parse_hazard(candidate)
        except ValueError:
            pass
    given = f"event {event!r}" + (f" or eventCode {[v for _, v in codes]}" if codes else "")
    raise IntakeError.invalid(
        "info.event", f"cannot tell the hazard from {given}; accepted: {accepted_hazards()} "
        "(or their Chinese names, or a CMA TTLL eventCode such as 0204)")


def _level(event: str, severity: str, codes: list[tuple[str, str]], params: list[tuple[str, str]]) -> Level:
    for element, pairs in (("info.eventCode", codes), ("info.parameter", params)):
        for name, value in pairs:
            if re.sub(r"[\s_-]", "", name.lower()) in _LEVEL_NAMES:
                try:
                    return parse_level(value.translate(_ROMAN).removesuffix("预警").removesuffix("级"))
                except ValueError as exc:
                    raise IntakeError.invalid(element, f"{name}: {exc}") from None
    for _, value in codes:
        if (level := _cma(value)[1]) is not None:
            return level
    if severity.lower() in _COLOURS:
        return _COLOURS[severity.lower()]
    if colour := _event_parts(event)[1]:
        return parse_level(colour)
    if severity.lower() in _OASIS_SEVERITY:
        return _OASIS_SEVERITY[severity.lower()]
    raise IntakeError.invalid(
        "info.severity", f"{severity or 'no severity'!r} gives no level and nothing else names one; send a "
        "level parameter, a CMA TTLL eventCode, a colour (Red, Orange, Yellow, Blue) or a severity of "
        "Extreme, Severe, Moderate or Minor")


def _areas(info: Element) -> list[str]:
    codes: list[str] = []
    for area in _children(info, "area"):
        for name, value in _pairs(area, "geocode"):
            if _is_zone(name):
                continue
            for token in filter(None, _SEPARATORS.split(value)):
                try:
                    codes.append(normalize_code(token))
                except ValueError as exc:
                    if not name or any(word in name.lower() for word in _DIVISION_NAMES):
                        raise IntakeError.invalid("info.area.geocode", str(exc)) from None
    if not codes and not _zones(info):
        raise IntakeError.invalid(
            "info.area.geocode", "no division code found; give each area's GB/T 2260 code (6 digits "
            "county, 9 town, 12 village) in a geocode, comma-separated in the Chinese profile")
    return list(dict.fromkeys(codes))


def _via(info: Element) -> list[str]:
    """The sites a forwarded warning passed through: the ``jiaoying_via`` parameter (intake.cap_out)."""
    for name, value in _pairs(info, "parameter"):
        if name.strip().lower() == "jiaoying_via":
            return list(dict.fromkeys(filter(None, _SEPARATORS.split(value))))
    return []


_YES = {"true": True, "1": True, "yes": True, "是": True, "false": False, "0": False, "no": False, "否": False}


def _drill_broadcast(info: Element) -> bool | None:
    """The ``jiaoying_drill_broadcast`` parameter: a drill asking for the rural broadcast (None: not given)."""
    for name, value in _pairs(info, "parameter"):
        if name.strip().lower() == "jiaoying_drill_broadcast":
            if value.strip().lower() not in _YES:
                raise IntakeError.invalid("info.parameter.jiaoying_drill_broadcast",
                                          f"{value[:40]!r} is not true or false (accepted: true, false, 1, 0, yes, no)")
            return _YES[value.strip().lower()]
    return None


# Exact names only: other schemes (a forecaster's ``forecastZone``) are not the site's hazard zones.
_ZONE_NAMES = ("zone", "jiaoying:zone", "危险区", "隐患点", "小流域")


def _is_zone(name: str) -> bool:
    return (name or "").strip().lower() in _ZONE_NAMES


def _zones(info: Element) -> list[str]:
    """Hazard-zone ids from geocodes whose valueName marks a zone (checked against the site at intake)."""
    zones = [token for area in _children(info, "area") for name, value in _pairs(area, "geocode")
             if _is_zone(name) for token in filter(None, _SEPARATORS.split(value))]
    return list(dict.fromkeys(zones))
