"""The deployment files name commands that exist (no Docker engine runs here to try them)."""

from __future__ import annotations

import tomllib

import yaml

from tests.conftest import ROOT


def test_compose_runs_the_production_set_with_migrations_first() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert set(services) == {"postgres", "redis", "migrate", "api", "worker", "scheduler"}
    assert services["worker"]["command"][:4] == ["celery", "-A", "worker", "worker"]
    assert services["scheduler"]["command"] == ["jiaoying", "scheduler"]
    assert "jiaoying db upgrade" in services["migrate"]["command"][-1]
    for role in ("api", "worker", "scheduler"):
        assert services[role]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
        assert services[role]["environment"]["JIAOYING_BROKER_URL"].startswith("redis://")


def test_the_console_command_and_the_celery_app_exist() -> None:
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts == {"jiaoying": "dispatcher.cli:main"}
    import worker

    assert worker.app.main == "jiaoying"
    assert "jiaoying.send_due" in worker.app.tasks
