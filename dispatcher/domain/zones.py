"""Hazard zones (危险区, 隐患点, 小流域, 水库下游): named sets of villages or groups that may cross
town boundaries. A warning that names a zone concerns exactly the zone's areas."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class ZoneKind(StrEnum):
    FLASH_FLOOD_ZONE = "flash_flood_zone"
    GEOHAZARD_POINT = "geohazard_point"
    SMALL_WATERSHED = "small_watershed"
    RESERVOIR_DOWNSTREAM = "reservoir_downstream"
    OTHER = "other"

    @property
    def zh(self) -> str:
        return {
            "flash_flood_zone": "山洪危险区", "geohazard_point": "地质灾害隐患点", "small_watershed": "小流域",
            "reservoir_downstream": "水库下游", "other": "危险区",
        }[self.value]


@dataclass(frozen=True)
class Zone:
    id: str
    name: str
    kind: ZoneKind
    areas: tuple[str, ...]
