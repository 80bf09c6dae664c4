"""A plan that can send a purpose through a configured template provider (Aliyun, Tencent) with no
approved template for it is a readiness gap in `validate` and `preview` — found before the flood
season, not as a failed message during the warning."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from dispatcher.config import Settings
from dispatcher.domain.callouts import Purpose
from dispatcher.domain.channels import Channel
from dispatcher.services.carrier_gaps import purposes_of, template_gaps
from dispatcher.services.preview import preview
from dispatcher.sites import check_site
from tests.conftest import FIXED_NOW, SAMPLE_SITE

ROOT = Path(__file__).resolve().parents[2]
SAMPLE_TEMPLATES = ROOT / "templates" / "carriers.sample.yaml"
ALIYUN = {"aliyun_access_key_id": "LTAI-test", "aliyun_access_key_secret": "secret-test",
          "aliyun_sms_sign_name": "青溪县应急管理局"}


def _site():  # type: ignore[no-untyped-def]
    site, problems = check_site(SAMPLE_SITE)
    assert not problems and site is not None
    return site


def _partial(tmp_path: Path) -> Path:
    # bad input: a template file with only the SMS alert approved so far
    path = tmp_path / "carriers.yaml"
    path.write_text("aliyun:\n  sms:\n    alert: {code: SMS_100001, variables: [official, title, ack_code]}\n",
                    encoding="utf-8")
    return path


def test_a_plans_purposes_follow_its_steps() -> None:
    red = next(p for p in _site().plans if p.steps and Channel.SMS in p.steps[0].channels)
    sms = purposes_of(red, Channel.SMS)
    assert sms[0] is Purpose.ALERT and Purpose.CANCEL in sms and Purpose.UPDATE in sms


def test_missing_templates_are_gaps_and_the_complete_sample_has_none(tmp_path: Path) -> None:
    site = _site()
    gaps = template_gaps(site, Settings(database_url="sqlite://", carrier_templates=str(_partial(tmp_path)), **ALIYUN))
    subjects = {g["subject"] for g in gaps}
    assert "aliyun/sms/alert" not in subjects  # approved
    assert "aliyun/sms/cancel" in subjects and "aliyun/voice/alert" in subjects
    assert all(g["kind"] == "no_template" and "jiaoying carriers templates --provider aliyun" in g["message"]
               for g in gaps)
    complete = Settings(database_url="sqlite://", carrier_templates=str(SAMPLE_TEMPLATES), **ALIYUN)
    assert template_gaps(site, complete) == []
    # No template provider configured (Twilio or the simulators take free text): nothing to approve.
    assert template_gaps(site, Settings(database_url="sqlite://")) == []


def test_a_duty_roll_call_and_a_spot_check_need_their_templates_too(tmp_path: Path) -> None:
    """The sample's roll-calls call by voice and SMS and tell the leaders by both: with only the
    warning templates approved (bad input: a file from before roll-calls), each is a gap naming it."""
    warnings_only = tmp_path / "carriers.yaml"
    warnings_only.write_text("\n".join(line for line in SAMPLE_TEMPLATES.read_text(encoding="utf-8").splitlines()
                                       if "rollcall" not in line and "spotcheck" not in line) + "\n",
                             encoding="utf-8")
    gaps = {g["subject"]: g["plan"] for g in template_gaps(
        _site(), Settings(database_url="sqlite://", carrier_templates=str(warnings_only), **ALIYUN))}
    both = "rollcall:daily, rollcall:weekly-spot"
    assert gaps == {"aliyun/sms/rollcall": "rollcall:daily", "aliyun/voice/rollcall": both,
                    "aliyun/sms/rollcall_missed": both, "aliyun/voice/rollcall_missed": both,
                    # … and the 六问 spot-check: its questions by voice and SMS, asked again by SMS
                    "aliyun/sms/spotcheck": "spotcheck:liuwen", "aliyun/voice/spotcheck": "spotcheck:liuwen",
                    "aliyun/sms/spotcheck_again": "spotcheck:liuwen"}


def test_preview_lists_the_gaps_of_the_matched_plans_only(tmp_path: Path) -> None:
    settings = Settings(database_url="sqlite://", carrier_templates=str(_partial(tmp_path)), **ALIYUN)
    result = preview(_site(), "rainstorm", "red", ["330599100"], FIXED_NOW, settings=settings)
    gaps = [g for g in result["gaps"] if g["kind"] == "no_template"]
    assert gaps and {p for g in gaps for p in g["plan"].split(", ")} <= set(result["plans"])


def test_validate_prints_the_gaps_and_an_unreadable_template_file(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JIAOYING_")}
    env |= {"JIAOYING_ALIYUN_ACCESS_KEY_ID": "LTAI-test", "JIAOYING_ALIYUN_ACCESS_KEY_SECRET": "secret-test",
            "JIAOYING_CARRIER_TEMPLATES": str(_partial(tmp_path))}
    r = subprocess.run([sys.executable, "-m", "dispatcher", "validate", str(SAMPLE_SITE)], env=env, cwd=tmp_path,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr  # the files are valid; the gaps are readiness, not errors
    assert "readiness gap: voice alert through aliyun has no approved template" in " ".join(r.stderr.split())
    assert "readiness gap(s) above" in " ".join(r.stdout.split())
    # bad input: JIAOYING_CARRIER_TEMPLATES names a file that does not exist
    env["JIAOYING_CARRIER_TEMPLATES"] = str(tmp_path / "missing.yaml")
    r = subprocess.run([sys.executable, "-m", "dispatcher", "validate", str(SAMPLE_SITE)], env=env, cwd=tmp_path,
                       capture_output=True, text=True, timeout=60)
    assert "missing.yaml: cannot read" in r.stderr and "Traceback" not in r.stderr
