"""The garbage collector of a service process (dispatcher/gcpause.py).

A fan-out's hundreds of thousands of short-lived objects made the collector walk the process's whole
live heap again and again (a third of a 10,000-official fan-out's time, bench/fanout.py). The
service entry points set it once they are built; tests and library callers keep Python's defaults.
Each check runs in a fresh interpreter: the collector's settings belong to the process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from dispatcher.gcpause import SERVICE_THRESHOLD


def _in_fresh_python(code: str, env: dict[str, str] | None = None) -> dict[str, object]:
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env={**os.environ, **(env or {})})
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


REPORT = "import gc, json; print(json.dumps({'threshold': gc.get_threshold(), 'frozen': gc.get_freeze_count(), " \
         "'enabled': gc.isenabled()}))"


def test_a_service_process_collects_rarely_and_leaves_its_start_up_heap_alone() -> None:
    seen = _in_fresh_python("from dispatcher.gcpause import tune_for_service, gc_paused\n"
                            "import dispatcher.cli\n"
                            "tune_for_service()\n"
                            "with gc_paused():\n    pass\n" + REPORT)
    assert seen["threshold"][0] == SERVICE_THRESHOLD  # type: ignore[index]
    assert seen["frozen"] > 10_000  # type: ignore[operator]  # the modules, the ORM's mappers, the CLI
    assert seen["enabled"] is True  # a pause still gives the collector back


def test_importing_the_package_keeps_pythons_defaults() -> None:
    seen = _in_fresh_python("import dispatcher.cli, dispatcher.runtime.engine, dispatcher.web.app\n" + REPORT)
    assert seen["threshold"][0] == 700 and seen["frozen"] == 0  # type: ignore[index]


def test_an_api_process_of_the_production_mode_is_tuned(tmp_path: Path) -> None:
    seen = _in_fresh_python("from dispatcher.web.app import production_app\nproduction_app()\n" + REPORT, env={
        "JIAOYING_SECRET_KEY": "k" * 48, "JIAOYING_DATABASE_URL": f"sqlite:///{tmp_path / 'api.db'}"})
    assert seen["threshold"][0] == SERVICE_THRESHOLD  # type: ignore[index]
