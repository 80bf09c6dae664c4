"""A synthetic county of any size, written as site files: for crash tests and benchmarks.

Towns of 20 villages, each village with ``per_village`` flood-control officials, all reachable by
SMS and IM; one red rainstorm plan calls them at step 0 on both channels, then by voice.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import yaml

from dispatcher.db.session import transaction
from dispatcher.intake.schema import parse_warning_dict
from dispatcher.services.intake import receive_warning
from dispatcher.services.site import load_site_files

COUNTY = "330599"


def write_big_site(folder: Path, officials: int, per_village: int = 5, voice_after: str = "5m") -> int:
    """Write the site; returns the number of officials (rounded up to whole villages)."""
    folder.mkdir(parents=True, exist_ok=True)
    villages = -(-officials // per_village)
    towns = -(-villages // 20)
    areas, people = [], []
    n = 0
    for t in range(towns):
        town = f"{COUNTY}{100 + t:03d}"
        children = []
        for v in range(min(20, villages - t * 20)):
            village = f"{town}{201 + v:03d}"
            children.append({"code": village, "name": f"村{t}-{v}"})
            for _ in range(per_village):
                n += 1
                people.append({"id": f"p{n}", "name": f"责任人{n}", "phone": f"+86138{n:08d}", "area": village,
                               "roles": ["village_flood_officer"], "im": {"dingtalk": f"+86138{n:08d}"}})
        areas.append({"code": town, "name": f"镇{t}", "children": children})
    people.append({"id": "duty", "name": "值班长", "phone": "+8613900000000", "area": COUNTY,
                   "roles": ["duty_officer"]})
    dump = {"allow_unicode": True, "sort_keys": False}
    (folder / "areas.yaml").write_text(yaml.safe_dump(
        {"site": "big", "name": "大县", "areas": [{"code": COUNTY, "name": "大县", "children": areas}]}, **dump))
    (folder / "people.yaml").write_text(yaml.safe_dump({"roles": {"village_flood_officer": "村防汛责任人",
                                                                  "duty_officer": "值班员"}, "people": people}, **dump))
    (folder / "duty.yaml").write_text(yaml.safe_dump({"weekly": [
        {"day": "mon", "start": "00:00", "hours": 168, "leader": "duty", "chief": "duty", "staff": []}]}, **dump))
    (folder / "plans.yaml").write_text(yaml.safe_dump({"plans": [{
        "id": "rain-red", "name": "暴雨红色", "match": {"hazards": ["rainstorm"], "levels": ["red"]},
        "targets": [{"roles": ["village_flood_officer"], "scope": "affected"}],
        "steps": [{"after": "0", "channels": ["sms", "im"], "to": "self"},
                  {"after": voice_after, "channels": ["voice"], "to": "self"}],
    }]}, **dump))
    return n


def post_big_warning(url: str, folder: Path, officials: int, now: datetime) -> str:
    """A big county's site files loaded into ``url`` and a red rainstorm warning for all of it
    stored (not yet applied); returns the warning's id."""
    write_big_site(folder, officials)
    with transaction(url) as session:
        load_site_files(session, folder, now)
        body = {"sender": "big-qx", "identifier": "R-1", "hazard": "rainstorm", "level": "red", "areas": [COUNTY],
                "headline": "大县气象台发布暴雨红色预警信号", "sent": now.isoformat()}
        return receive_warning(session, parse_warning_dict(body), key=None, source_format="json",
                               raw=json.dumps(body), now=now).id
