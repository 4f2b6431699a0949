"""The example services start cleanly: system checks and migrations are in order."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

MANAGE = Path(__file__).resolve().parent.parent / "example_service" / "manage.py"


def manage(
    service: str, *args: str, tmp_path: Path
) -> subprocess.CompletedProcess[str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE"}
    }
    env["DATABASE_URL"] = f"sqlite:///{tmp_path / f'{service}.sqlite3'}"
    # The services run on this checkout's library, whatever else is installed.
    env["PYTHONPATH"] = os.pathsep.join(
        [str(MANAGE.parent.parent), *filter(None, [env.get("PYTHONPATH")])]
    )
    return subprocess.run(
        [sys.executable, str(MANAGE), *args, f"--settings={service}.settings"],
        capture_output=True,
        text=True,
        env=env,
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
