"""Hazards (灾种) and warning levels (预警等级): the one list the whole product uses."""

from __future__ import annotations

from enum import StrEnum


class Hazard(StrEnum):
    TYPHOON = "typhoon"
    RAINSTORM = "rainstorm"
    BLIZZARD = "blizzard"
    COLD_WAVE = "cold_wave"
    GALE = "gale"
    THUNDERSTORM_GALE = "thunderstorm_gale"
    SANDSTORM = "sandstorm"
    HEAT = "heat"
    DROUGHT = "drought"
    LIGHTNING = "lightning"
    HAIL = "hail"
    FROST = "frost"
    FOG = "fog"
    HAZE = "haze"
    ROAD_ICING = "road_icing"
    FLASH_FLOOD = "flash_flood"
    FLOOD = "flood"
    WATERLOGGING = "waterlogging"
    GEOHAZARD = "geohazard"
    FOREST_FIRE = "forest_fire"
    ENTERPRISE_RISK = "enterprise_risk"

    @property
    def zh(self) -> str:
        return HAZARD_NAMES_ZH[self]


HAZARD_NAMES_ZH: dict[Hazard, str] = {
    Hazard.TYPHOON: "台风",
    Hazard.RAINSTORM: "暴雨",
    Hazard.BLIZZARD: "暴雪",
    Hazard.COLD_WAVE: "寒潮",
    Hazard.GALE: "大风",
    Hazard.THUNDERSTORM_GALE: "雷雨大风",
    Hazard.SANDSTORM: "沙尘暴",
    Hazard.HEAT: "高温",
    Hazard.DROUGHT: "干旱",
    Hazard.LIGHTNING: "雷电",
    Hazard.HAIL: "冰雹",
    Hazard.FROST: "霜冻",
    Hazard.FOG: "大雾",
    Hazard.HAZE: "霾",
    Hazard.ROAD_ICING: "道路结冰",
    Hazard.FLASH_FLOOD: "山洪",
    Hazard.FLOOD: "洪水",
    Hazard.WATERLOGGING: "内涝",
    Hazard.GEOHAZARD: "地质灾害",
    Hazard.FOREST_FIRE: "森林火险",
    Hazard.ENTERPRISE_RISK: "企业安全风险",
}

# The CMA / national warning-release feed codes hazards as two digits (TT of TTLL).
CMA_TYPE_CODES: dict[str, Hazard] = {
    "01": Hazard.TYPHOON,
    "02": Hazard.RAINSTORM,
    "03": Hazard.BLIZZARD,
    "04": Hazard.COLD_WAVE,
    "05": Hazard.GALE,
    "06": Hazard.SANDSTORM,
    "07": Hazard.HEAT,
    "08": Hazard.DROUGHT,
    "09": Hazard.LIGHTNING,
    "10": Hazard.HAIL,
    "11": Hazard.FROST,
    "12": Hazard.FOG,
    "13": Hazard.HAZE,
    "14": Hazard.ROAD_ICING,
    "15": Hazard.FOREST_FIRE,
    "16": Hazard.THUNDERSTORM_GALE,
}


def accepted_hazards() -> str:
    return ", ".join(h.value for h in Hazard)


def parse_hazard(value: str) -> Hazard:
    """A hazard from its code or its Chinese name; ValueError names the accepted codes."""
    text = value.strip()
    try:
        return Hazard(text.lower())
    except ValueError:
        pass
    for hazard, zh in HAZARD_NAMES_ZH.items():
        if text == zh:
            return hazard
    raise ValueError(f"unknown hazard {value!r}; accepted: {accepted_hazards()}")


class Level(StrEnum):
    """Warning colour. Ordered: blue < yellow < orange < red (IV < III < II < I)."""

    BLUE = "blue"
    YELLOW = "yellow"
    ORANGE = "orange"
    RED = "red"

    @property
    def rank(self) -> int:
        return _LEVEL_RANK[self]

    @property
    def zh(self) -> str:
        return _LEVEL_ZH[self]

    @property
    def roman(self) -> str:
        return _LEVEL_ROMAN[self]

    # str already defines the rich comparisons, so all four are spelled out (total_ordering
    # would leave str's alphabetical ones in place).
    def __lt__(self, other: object) -> bool:
        return self.rank < _rank(other)

    def __le__(self, other: object) -> bool:
        return self.rank <= _rank(other)

    def __gt__(self, other: object) -> bool:
        return self.rank > _rank(other)

    def __ge__(self, other: object) -> bool:
        return self.rank >= _rank(other)


def _rank(other: object) -> int:
    if not isinstance(other, Level):
        raise TypeError(f"cannot compare a level with {type(other).__name__}")
    return other.rank


_LEVEL_RANK = {Level.BLUE: 1, Level.YELLOW: 2, Level.ORANGE: 3, Level.RED: 4}
_LEVEL_ZH = {Level.BLUE: "蓝色", Level.YELLOW: "黄色", Level.ORANGE: "橙色", Level.RED: "红色"}
_LEVEL_ROMAN = {Level.BLUE: "IV", Level.YELLOW: "III", Level.ORANGE: "II", Level.RED: "I"}
_LEVEL_ALIASES = {
    "蓝": Level.BLUE, "蓝色": Level.BLUE, "iv": Level.BLUE, "4": Level.BLUE,
    "黄": Level.YELLOW, "黄色": Level.YELLOW, "iii": Level.YELLOW, "3": Level.YELLOW,
    "橙": Level.ORANGE, "橙色": Level.ORANGE, "ii": Level.ORANGE, "2": Level.ORANGE,
    "红": Level.RED, "红色": Level.RED, "i": Level.RED, "1": Level.RED,
}
# CMA feed colour digits (LL of TTLL).
CMA_LEVEL_CODES: dict[str, Level] = {"01": Level.BLUE, "02": Level.YELLOW, "03": Level.ORANGE, "04": Level.RED}


def accepted_levels() -> str:
    return ", ".join(level.value for level in Level)


def parse_level(value: str) -> Level:
    text = value.strip().lower()
    try:
        return Level(text)
    except ValueError:
        pass
    if text in _LEVEL_ALIASES:
        return _LEVEL_ALIASES[text]
    raise ValueError(f"unknown level {value!r}; accepted: {accepted_levels()}")
