"""The README's quickstart, executed: its settings and urls snippets, added to a
fresh ``django-admin startproject``, give a service that answers as it says."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.core import management

ROOT = Path(__file__).parent.parent
README = ROOT / "README.md"
FENCED = re.compile(r"^```python\n(.*?)^```$", re.MULTILINE | re.DOTALL)

#: Gathers the answers in the project's own process (``manage.py shell``); the
#: test asserts on them. One line of JSON, after a marker.
SCRIPT = """
import json
from django.test import Client, override_settings
from django.test.utils import setup_test_environment

setup_test_environment()
BROWSER = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
answers = {}
for debug in (False, True):
    with override_settings(DEBUG=debug):
        client = Client(raise_request_exception=False, enforce_csrf_checks=True)
        for name, method, url, headers in [
            ("unknown", "get", "/nowhere/", {}),
            ("unknown-browser", "get", "/nowhere/", BROWSER),
            ("crash", "get", "/crash/", {}),
            ("csrf", "post", "/admin/login/", {}),
            ("live", "get", "/health/live", {"X-Request-ID": "req-1"}),
            ("schema", "get", "/api/schema/", {}),
            ("docs", "get", "/api/docs/", BROWSER),
        ]:
            response = getattr(client, method)(url, headers=headers)
            answers[f"{name} {debug}"] = {
                "status": response.status_code,
                "type": response["Content-Type"],
                "request_id": response.get("X-Request-ID"),
                "body": response.content.decode(),
            }
print("ANSWERS " + json.dumps(answers))
"""

#: A view of the test's own, beside the README's lines: an unhandled exception.
CRASH = """

def crash(request):
    raise RuntimeError("password=hunter2")


urlpatterns += [path("crash/", crash)]
"""


def snippets(file: str) -> str:
    """The README's python blocks for ``file``, optional ones included."""
    blocks = [
        block
        for block in FENCED.findall(README.read_text())
        if block.startswith(f"# {file}")
    ]
    assert blocks, f"the README has no {file} snippet"
    return "\n".join(blocks)


def run(project: Path, *args: str) -> str:
    """``manage.py`` of the project, with this checkout's django_microkit and
    the project's own settings (not the suite's)."""
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    env["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(ROOT), env.get("PYTHONPATH")])
    )
    done = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout + done.stderr


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("readme")
    management.call_command("startproject", "shop", str(root), verbosity=0)
    package = root / "shop"
    with (package / "settings.py").open("a") as settings:
        settings.write("\n" + snippets("settings.py"))
    with (package / "urls.py").open("a") as urls:
        urls.write("\n" + snippets("urls.py") + CRASH)
    return root


@pytest.fixture(scope="module")
def answers(project: Path) -> dict[str, Any]:
    output = run(project, "shell", "-c", SCRIPT)
    line = next(line for line in output.splitlines() if line.startswith("ANSWERS "))
    result: dict[str, Any] = json.loads(line.removeprefix("ANSWERS "))
    return result


def test_the_project_checks_clean(project: Path) -> None:
    assert "System check identified no issues" in run(project, "check")


@pytest.mark.parametrize("debug", [False, True])
def test_an_unknown_url_is_a_problem(answers: dict[str, Any], debug: bool) -> None:
    answer = answers[f"unknown {debug}"]
    assert (answer["status"], answer["type"]) == (404, "application/problem+json")
    body = json.loads(answer["body"])
    assert (body["code"], body["request_id"]) == ("not_found", answer["request_id"])


def test_a_browser_gets_djangos_page_under_debug_only(answers: dict[str, Any]) -> None:
    assert answers["unknown-browser True"]["type"].startswith("text/html")
    assert answers["unknown-browser False"]["type"] == "application/problem+json"


@pytest.mark.parametrize("debug", [False, True])
def test_an_unhandled_exception_is_a_problem(
    answers: dict[str, Any], debug: bool
) -> None:
    answer = answers[f"crash {debug}"]
    assert (answer["status"], answer["type"]) == (500, "application/problem+json")
    body = json.loads(answer["body"])
    assert body["code"] == "server_error"
    if debug:
        assert body["debug"]["exception"] == "RuntimeError: password=hunter2"
    else:
        assert "debug" not in body
        assert "hunter2" not in answer["body"]


@pytest.mark.parametrize("debug", [False, True])
def test_a_csrf_failure_is_a_403_problem(answers: dict[str, Any], debug: bool) -> None:
    answer = answers[f"csrf {debug}"]
    assert (answer["status"], answer["type"]) == (403, "application/problem+json")
    assert json.loads(answer["body"])["code"] == "csrf_failed"


def test_the_probe_echoes_the_request_id(answers: dict[str, Any]) -> None:
    answer = answers["live False"]
    assert (answer["status"], answer["request_id"]) == (200, "req-1")


def test_the_schema_and_swagger_routes(answers: dict[str, Any]) -> None:
    schema = answers["schema False"]
    assert (schema["status"], schema["type"]) == (
        200,
        "application/vnd.oai.openapi; charset=utf-8",
    )
    assert "openapi: 3" in schema["body"]
    docs = answers["docs False"]
    assert (docs["status"], docs["type"]) == (200, "text/html; charset=utf-8")
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/" in docs["body"]
    assert "cdn" not in docs["body"].lower()
