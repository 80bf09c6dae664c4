"""docs/configuration.md names every setting (a JIAOYING_* variable the code reads but the docs do not
list is one a county cannot find)."""

from __future__ import annotations

from pathlib import Path

from dispatcher.config import Settings

DOC = (Path(__file__).resolve().parents[2] / "docs" / "configuration.md").read_text(encoding="utf-8")


def test_every_setting_is_in_the_configuration_docs() -> None:
    missing = []
    for name in Settings.model_fields:
        full = f"JIAOYING_{name.upper()}"
        # A row may abbreviate a group: `JIAOYING_TWILIO_ACCOUNT_SID`, `…_AUTH_TOKEN`.
        words = name.upper().split("_")
        short = {f"…_{'_'.join(words[i:])}`" for i in range(len(words))}
        if f"`{full}`" not in DOC and not any(s in DOC for s in short):
            missing.append(full)
    assert missing == [], f"not in docs/configuration.md: {missing}"
