"""The example services start cleanly: system checks and migrations are in order."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MANAGE = ROOT / "example_service" / "manage.py"


def service_env(service: str, tmp_path: Path) -> dict[str, str]:
    """The environment of a service process: its own SQLite database, and this
    checkout's django_microkit first on the path (as pytest has it)."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE"}
    }
    env["DATABASE_URL"] = f"sqlite:///{tmp_path / f'{service}.sqlite3'}"
    # This checkout's django_microkit, not whichever copy is installed.
    env["PYTHONPATH"] = str(MANAGE.parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])
    )
    return env


def manage(
    service: str, *args: str, tmp_path: Path
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(MANAGE), *args, f"--settings={service}.settings"],
        capture_output=True,
        text=True,
        env=service_env(service, tmp_path),
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize("service", ["catalog", "orders"])
def test_example_service_checks_and_migrates(service: str, tmp_path: Path) -> None:
    check = manage(service, "check", "--fail-level", "WARNING", tmp_path=tmp_path)
    assert check.returncode == 0, check.stderr
    assert "no issues" in check.stdout
    migrations = manage(
        service, "makemigrations", "--check", "--dry-run", tmp_path=tmp_path
    )
    assert migrations.returncode == 0, migrations.stdout + migrations.stderr
    migrate = manage(service, "migrate", "--noinput", tmp_path=tmp_path)
    assert migrate.returncode == 0, migrate.stderr


@pytest.mark.parametrize("service", ["catalog", "orders"])
def test_example_service_logs_json_with_request_ids(
    service: str, tmp_path: Path
) -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "example_probe.py"), service],
        capture_output=True,
        text=True,
        env=service_env(service, tmp_path),
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    probes = {line["probe"]: line for line in lines if "probe" in line}
    assert probes["response"]["header"] == f"{service}-probe"
    (access, *_) = [
        line for line in lines if line.get("logger") == "django_microkit.access"
    ]
    assert access["request_id"] == f"{service}-probe"
    assert access["service"] == service
    assert (access["status"], access["path"]) == (404, "/api/no-such-thing/")
    if service == "orders":
        sent = {k.lower(): v for k, v in probes["catalog call"]["headers"].items()}
        assert sent["x-request-id"] == "orders-calls-catalog"
        assert sent["traceparent"].startswith("00-")
