"""A fake Aliyun that knows the sample carrier templates (templates/carriers.sample.yaml), for end-to-end
tests that send a roll-call or a spot-check through Aliyun's API."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.conftest import ROOT
from tests.fakes.aliyun_server import FakeAliyun, templates_from_file

SAMPLE_TEMPLATES = ROOT / "templates" / "carriers.sample.yaml"
SIGN, SHOW = "青溪县应急管理局", "057156781234"


def start_sample_aliyun(ak_id: str, ak_secret: str) -> tuple[FakeAliyun, dict[str, Any]]:
    """The fake, started (the caller stops it), and the settings that send to it with the sample's
    approved templates."""
    fake = FakeAliyun(ak_id, ak_secret, sign_names={SIGN}, templates=templates_from_file(str(SAMPLE_TEMPLATES)),
                      show_numbers={SHOW})
    fake.start()
    return fake, {"aliyun_access_key_id": ak_id, "aliyun_access_key_secret": ak_secret,
                  "aliyun_sms_sign_name": SIGN, "aliyun_voice_show_number": SHOW, "aliyun_sms_endpoint": fake.url,
                  "aliyun_voice_endpoint": fake.url, "carrier_templates": str(Path(SAMPLE_TEMPLATES))}
