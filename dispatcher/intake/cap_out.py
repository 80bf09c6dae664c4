"""Writing CAP 1.2 for the systems we forward to (services/forwarding.py): the city's warning
platform, a neighbouring county's Jiaoying. What ``intake.cap`` reads, this writes, so a forwarded
warning posted into another Jiaoying is the same warning there (hazard, level, areas, zones,
headline, sent, expires, drill status).

The document is OASIS CAP 1.2 in its namespace, elements in the XSD's order, with the Chinese
national profile's (GB/T 35965.1) conventions where a reader of either understands them:

- ``<severity>`` holds the colour (``Red`` ``Orange`` ``Yellow`` ``Blue``), as the national profile
  does; the level is also a ``<parameter>`` ``level`` (``red``), and the CMA feed's ``TTLL`` code an
  ``<eventCode>`` where the hazard has one (``0204`` = 暴雨红色), beside our own hazard code;
- ``<event>`` in Chinese (暴雨), ``<language>zh-CN</language>``, times in the site's zone with their
  offset and no fraction (``2026-07-16T11:10:00+08:00``);
- each area a ``<geocode>`` (``GB2260``: its division code), each hazard zone one named ``zone``;
- ``<references>`` as ``sender,identifier,sent`` triples of the messages we forwarded before
  (a national-profile reader takes their identifiers);
- ``status`` ``Exercise`` for a drill, ``Actual`` otherwise; ``scope`` ``Public``;
- ``<parameter>`` ``jiaoying_via``: the site ids the warning passed through, ours last (loops stop
  there: see docs/forwarding.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from xml.etree import ElementTree as ET

from ..domain.hazards import CMA_LEVEL_CODES, CMA_TYPE_CODES, Hazard, Level
from .cap import CAP12_NS

__all__ = ["CAP_CONTENT_TYPE", "VIA_PARAMETER", "CapMessage", "Reference", "cap_time", "write_cap"]

CAP_CONTENT_TYPE = "application/cap+xml; charset=utf-8"
VIA_PARAMETER = "jiaoying_via"
_SEVERITY = {Level.RED: "Red", Level.ORANGE: "Orange", Level.YELLOW: "Yellow", Level.BLUE: "Blue"}
_CMA_TYPE = {hazard: code for code, hazard in CMA_TYPE_CODES.items()}
_CMA_LEVEL = {level: code for code, level in CMA_LEVEL_CODES.items()}
_CATEGORY = {Hazard.GEOHAZARD: "Geo", Hazard.FOREST_FIRE: "Fire", Hazard.ENTERPRISE_RISK: "Safety"}


@dataclass(frozen=True)
class Reference:
    """An earlier message we sent: ``sender,identifier,sent``."""

    sender: str
    identifier: str
    sent: datetime


@dataclass(frozen=True)
class CapMessage:
    identifier: str
    sender: str
    sent: datetime
    msg_type: str  # alert | update | cancel
    hazard: Hazard
    level: Level
    headline: str
    areas: Sequence[tuple[str, str]]  # (division code, name)
    tz: tzinfo
    drill: bool = False
    references: Sequence[Reference] = ()
    description: str = ""
    instruction: str = ""
    expires: datetime | None = None
    zones: Sequence[tuple[str, str]] = ()  # (zone id, name)
    sender_name: str = ""
    source: str = ""
    note: str = ""
    via: Sequence[str] = ()
    parameters: Sequence[tuple[str, str]] = field(default_factory=tuple)  # more valueName/value pairs


def cap_time(moment: datetime, tz: tzinfo) -> str:
    """xs:dateTime as CAP 1.2 wants it: the offset written, no fraction, no ``Z``."""
    local = moment.astimezone(tz).replace(microsecond=0)
    text = local.isoformat()
    return text[:-6] + "-00:00" if text.endswith("+00:00") else text


def write_cap(message: CapMessage) -> bytes:
    """The CAP 1.2 document (UTF-8, with its XML declaration)."""
    m = message
    alert = _el(None, "alert")
    _el(alert, "identifier", m.identifier)
    _el(alert, "sender", m.sender)
    _el(alert, "sent", cap_time(m.sent, m.tz))
    _el(alert, "status", "Exercise" if m.drill else "Actual")
    _el(alert, "msgType", m.msg_type.capitalize())
    if m.source:
        _el(alert, "source", m.source)
    _el(alert, "scope", "Public")
    if m.note:
        _el(alert, "note", m.note)
    if m.references:
        _el(alert, "references", " ".join(f"{r.sender},{r.identifier},{cap_time(r.sent, m.tz)}"
                                          for r in m.references))
    info = _el(alert, "info")
    _el(info, "language", "zh-CN")
    _el(info, "category", _CATEGORY.get(m.hazard, "Met"))
    _el(info, "event", m.hazard.zh)
    _el(info, "urgency", "Past" if m.msg_type == "cancel" else
        ("Immediate" if m.level >= Level.ORANGE else "Expected"))
    _el(info, "severity", _SEVERITY[m.level])
    _el(info, "certainty", "Likely")
    _pair(info, "eventCode", "jiaoying", m.hazard.value)
    if m.hazard in _CMA_TYPE:
        _pair(info, "eventCode", "CMA", _CMA_TYPE[m.hazard] + _CMA_LEVEL[m.level])
    if m.expires is not None:
        _el(info, "expires", cap_time(m.expires, m.tz))
    if m.sender_name:
        _el(info, "senderName", m.sender_name)
    _el(info, "headline", m.headline)
    if m.description:
        _el(info, "description", m.description)
    if m.instruction:
        _el(info, "instruction", m.instruction)
    _pair(info, "parameter", "level", m.level.value)
    if m.via:
        _pair(info, "parameter", VIA_PARAMETER, ",".join(m.via))
    for name, value in m.parameters:
        _pair(info, "parameter", name, value)
    if m.areas or m.zones:
        area = _el(info, "area")
        names = [name for _, name in (*m.areas, *m.zones)]
        _el(area, "areaDesc", "、".join(names))
        for code, _ in m.areas:
            _pair(area, "geocode", "GB2260", code)
        for zone, _ in m.zones:
            _pair(area, "geocode", "zone", zone)
    ET.indent(alert, space="  ")  # for the people who read what was sent (the row keeps it)
    return ET.tostring(alert, encoding="utf-8", xml_declaration=True, default_namespace=CAP12_NS)


def _el(parent: ET.Element | None, name: str, text: str | None = None) -> ET.Element:
    tag = f"{{{CAP12_NS}}}{name}"
    element = ET.Element(tag) if parent is None else ET.SubElement(parent, tag)
    if text is not None:
        element.text = text
    return element


def _pair(parent: ET.Element, name: str, value_name: str, value: str) -> None:
    element = _el(parent, name)
    _el(element, "valueName", value_name)
    _el(element, "value", value)
