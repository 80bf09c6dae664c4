"""docs/configuration.md names every setting (a JIAOYING_* variable the code reads but the docs do not
list is one a county cannot find)."""

from __future__ import annotations

from pathlib import Path

import pytest

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


def _generator():  # type: ignore[no-untyped-def]
    from importlib.machinery import SourceFileLoader
    from importlib.util import module_from_spec, spec_from_loader

    path = Path(__file__).resolve().parents[2] / "scripts" / "gen-config-docs"
    loader = SourceFileLoader("gen_config_docs", str(path))
    module = module_from_spec(spec_from_loader("gen_config_docs", loader))
    loader.exec_module(module)
    return module


def test_the_settings_table_is_what_scripts_gen_config_docs_writes() -> None:
    gen = _generator()
    assert gen.render(DOC, Settings) == DOC, (
        "docs/configuration.md differs from the Settings class: run scripts/gen-config-docs")


def test_the_table_keeps_a_setting_s_description_and_default() -> None:
    gen = _generator()
    rows = {names.split(",")[0]: (default, meaning) for names, default, meaning in gen.rows(Settings)}
    assert rows["`JIAOYING_MAX_BODY_BYTES`"] == ("`262144`", Settings.model_fields["max_body_bytes"].description)
    assert rows["`JIAOYING_LINK_TTL_HOURS`"][0] == "`24`"
    assert rows["`JIAOYING_ALLOW_SIMULATORS`"][0] == "`false`"
    assert "`JIAOYING_TWILIO_AUTH_TOKEN`" not in rows  # shown in the row of the account SID


def test_a_setting_without_a_description_is_refused_by_the_generator() -> None:
    # bad input: a new setting added with no Field(description=...) would be a row nobody can read
    from pydantic import Field

    gen = _generator()

    class Undocumented(Settings):
        new_knob: int = Field(3)

    with pytest.raises(SystemExit, match="new_knob: no description"):
        gen.rows(Undocumented)
    with pytest.raises(SystemExit, match="needs one pair of markers"):  # bad input: the markers removed
        gen.render("# Configuration\n\nno table here\n", Settings)
