"""Ids made from Chinese names with pypinyin, in the style of the sample roster.

A person: surname, '-', the given name's syllables run together (王建国 -> ``wang-jianguo``,
欧阳晓峰 -> ``ouyang-xiaofeng``; 阿卜杜拉·买买提 -> ``abudula-maimaiti``). A role: every syllable
joined by '-' (镇委书记 -> ``zhen-wei-shu-ji``). Letters and digits other than Chinese characters are kept (lowercased);
everything else is dropped. ``unique`` adds ``-2``, ``-3`` … to an id already taken.
"""

from __future__ import annotations

import re
from collections.abc import Container

from pypinyin import lazy_pinyin

# Two-character surnames: written as one word, like the one-character ones.
COMPOUND_SURNAMES = frozenset({
    "欧阳", "司马", "上官", "诸葛", "东方", "皇甫", "尉迟", "公孙", "长孙", "慕容", "令狐", "夏侯",
    "宇文", "司徒", "端木", "轩辕", "独孤", "南宫", "西门", "百里", "呼延", "万俟", "澹台", "公冶",
})
# Surnames read differently from the same character in other words.
SURNAME_READINGS = {
    "曾": "zeng", "单": "shan", "解": "xie", "仇": "qiu", "朴": "piao", "查": "zha", "区": "ou",
    "乐": "yue", "覃": "qin", "缪": "miao", "盖": "ge", "种": "chong", "秘": "bi", "翟": "zhai",
    "万俟": "moqi", "尉迟": "yuchi", "长孙": "zhangsun",
}
_NOT_ID = re.compile(r"[^a-z0-9]+")


def _syllables(text: str) -> list[str]:
    """Pinyin syllables; runs of other letters and digits as words of their own."""
    words = []
    for part in lazy_pinyin(text):
        words += [w for w in _NOT_ID.split(part.lower()) if w]
    return words


def person_id(name: str) -> str:
    """``wang-jianguo`` for 王建国; ``person`` when the name gives no letters at all."""
    if not _is_han(name.strip()[:1]):  # a name in Latin letters: its words joined by '-'
        return "-".join(_syllables(name)) or "person"
    name = "".join(name.split())
    if "·" in name or "•" in name:  # 阿卜杜拉·买买提: a transliterated name, its parts joined by '-'
        return "-".join(w for part in re.split("[·•]", name) if (w := "".join(_syllables(part)))) or "person"
    surname = name[:2] if name[:2] in COMPOUND_SURNAMES else name[:1]
    head = SURNAME_READINGS.get(surname) or "".join(_syllables(surname))
    given = "".join(_syllables(name[len(surname):]))
    return "-".join(part for part in (head, given) if part) or "person"


def role_id(name: str) -> str:
    """``zhen-wei-shu-ji`` for 镇委书记; ``role`` when the name gives no letters at all."""
    return "-".join(_syllables(name)) or "role"


def unique(base: str, taken: Container[str]) -> str:
    """``base``, or ``base-2``, ``base-3`` … the first not in ``taken``."""
    if base not in taken:
        return base
    n = 2
    while f"{base}-{n}" in taken:
        n += 1
    return f"{base}-{n}"


def _is_han(text: str) -> bool:
    return bool(text) and all("\u3400" <= ch <= "\u9fff" or "\uf900" <= ch <= "\ufaff" for ch in text)
