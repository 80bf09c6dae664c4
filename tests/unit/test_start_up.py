"""What a process loads as it starts. Every command a duty officer types, each API process and each
engine process (scheduler, worker) pays for its imports before it does anything: a provider's SDK
that is not configured, or a password hash made at import, was most of a second of CPU each time
(`jiaoying serve` importing the Aliyun and Tencent SDKs, the twilio client, requests, httpx and
aiosmtplib for a county that uses none of them; every `users` import hashing a dummy password).

Each check runs in a fresh interpreter: this one has long since imported everything."""

from __future__ import annotations

import json
import subprocess
import sys

from dispatcher.config import project_root

# The provider SDKs and HTTP/mail clients that only a configured, used channel needs.
ON_DEMAND = ("alibabacloud_dysmsapi20170525", "alibabacloud_dyvmsapi20170525", "tencentcloud", "twilio.rest",
             "requests", "httpx", "aiosmtplib")


def loaded_after(code: str) -> dict[str, object]:
    """Run ``code`` in a fresh interpreter; it leaves its findings in ``found`` (a dict), and which
    of ON_DEMAND it loaded is added."""
    program = (f"import json, sys\nfound = {{}}\n{code}\n"
               f"found['loaded'] = sorted(m for m in {ON_DEMAND!r} if m in sys.modules)\n"
               "print(json.dumps(found))")
    ran = subprocess.run([sys.executable, "-c", program], cwd=project_root(), capture_output=True, text=True,
                         timeout=120, check=False)
    assert ran.returncode == 0, ran.stderr
    return json.loads(ran.stdout.strip().splitlines()[-1])


def test_serving_with_simulated_channels_loads_no_provider_sdk() -> None:
    """What `jiaoying serve` imports (the CLI, the app, the embedded runtime), every adapter module
    read for its declarations, and the adapters built for a county with no provider configured."""
    found = loaded_after(
        "import dispatcher.cli, dispatcher.api.app, dispatcher.runtime.embedded\n"
        "from dispatcher.config import Settings\n"
        "from dispatcher.channels.registry import build_adapters, registrations\n"
        "from dispatcher.channels.simulator import SimOutbox\n"
        "found['providers'] = sorted({r.provider for r in registrations()})\n"
        "found['built'] = sorted(a.provider for a in build_adapters(Settings(database_url='sqlite://'), "
        "SimOutbox()).values())\n")
    assert {"aliyun", "tencent", "twilio", "im", "smtp"} <= set(found["providers"])  # every module was read
    assert set(found["built"]) == {"simulator"}
    assert found["loaded"] == []


def test_a_configured_provider_loads_its_client_when_its_adapter_is_built() -> None:
    """The other side: Twilio configured, its adapters built — the twilio client is there to send."""
    found = loaded_after(
        "from dispatcher.config import Settings\n"
        "from dispatcher.channels.registry import build_adapters\n"
        "from dispatcher.channels.simulator import SimOutbox\n"
        "settings = Settings(database_url='sqlite://', twilio_account_sid='AC' + '0' * 32, "
        "twilio_auth_token='t' * 32, twilio_from_number='+15005550006')\n"
        "found['built'] = sorted({a.provider for a in build_adapters(settings, SimOutbox()).values()})\n")
    assert "twilio" in found["built"]
    assert {"twilio.rest", "requests"} <= set(found["loaded"])


def test_importing_the_accounts_module_hashes_no_password() -> None:
    """The dummy hash that makes an unknown name take as long as a wrong password is made on first
    need, on the password threads — and still used: an unknown name is checked against it."""
    found = loaded_after(
        "import argon2\n"
        "hashed = []\n"
        "real = argon2.PasswordHasher.hash\n"
        "argon2.PasswordHasher.hash = lambda self, password: hashed.append(password) or real(self, password)\n"
        "from dispatcher.services import users\n"
        "found['at_import'] = len(hashed)\n"
        "found['unknown_name_signs_in'] = users.PASSWORD_CHECKS.check(None, 'not a password')\n"
        "found['after_check'] = len(hashed)\n")
    assert found["at_import"] == 0
    assert found["after_check"] == 1
    # Bad input: an unknown name with the dummy's own password. It never signed in (the sign-in
    # also asks whether the name was found); the check itself now says no as well.
    assert found["unknown_name_signs_in"] is False


def test_a_command_that_needs_no_database_starts_without_the_orm() -> None:
    """`jiaoying validate` (like --help, carriers, import and export) opens no transaction: the ORM
    and the tables stay out (SQLAlchemy's core is there: the settings parse the database URL)."""
    found = loaded_after(
        "from typer.testing import CliRunner\n"
        "import dispatcher.cli as cli\n"
        "ran = CliRunner().invoke(cli.app, ['validate', 'rosters/qingxi'])\n"
        "found['exit'] = ran.exit_code\n"
        "found['orm'] = sorted(m for m in ('sqlalchemy.orm', 'dispatcher.db.tables', 'dispatcher.db.session') "
        "if m in sys.modules)\n")
    assert found["exit"] == 0
    assert found["orm"] == []
