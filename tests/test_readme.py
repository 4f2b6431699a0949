"""The README's quickstart, executed: its settings and urls snippets, added to a
fresh ``django-admin startproject``, give a service that answers as it says,
with the required lines alone and with the optional ones too."""

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
JSON = {"Accept": "application/json"}
answers = {}
for debug in (False, True):
    with override_settings(DEBUG=debug):
        client = Client(raise_request_exception=False, enforce_csrf_checks=True)
        for name, method, url, headers in [
            ("unknown", "get", "/nowhere/", {}),
            ("unknown-json", "get", "/nowhere/", JSON),
            ("unknown-browser", "get", "/nowhere/", BROWSER),
            ("crash", "get", "/crash/", {}),
            ("crash-json", "get", "/crash/", JSON),
            ("crash-browser", "get", "/crash/", BROWSER),
            ("api-crash", "get", "/api-crash/", {}),
            ("api-crash-json", "get", "/api-crash/", JSON),
            ("api-crash-browser", "get", "/api-crash/", BROWSER),
            ("csrf", "post", "/admin/login/", {}),
            ("csrf-json", "post", "/admin/login/", JSON),
            ("slash", "post", "/admin", JSON),
            ("host", "get", "/admin/", {"Host": "evil.example"}),
            ("host-json", "get", "/admin/", {**JSON, "Host": "evil.example"}),
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

#: Views of the test's own, beside the README's lines: an unhandled exception
#: in a plain view and in a DRF view.
CRASH = """

from rest_framework.decorators import api_view, permission_classes


def crash(request):
    raise RuntimeError("password=hunter2")


@api_view(["GET"])
@permission_classes([])
def api_crash(request):
    raise RuntimeError("password=hunter2")


urlpatterns += [path("crash/", crash), path("api-crash/", api_crash)]
"""

#: The projects made: the README's required lines alone, and with the optional.
PROJECTS = ["required", "full"]


def snippets(file: str, *, optional: bool) -> str:
    """The README's python blocks for ``file``, optional ones too if asked."""
    blocks = [
        block
        for block in FENCED.findall(README.read_text())
        if block.partition("\n")[0] == f"# {file}"
        or (optional and block.startswith(f"# {file} (optional)"))
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


@pytest.fixture(scope="module", params=PROJECTS)
def project(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    optional = request.param == "full"
    root = tmp_path_factory.mktemp(request.param)
    management.call_command("startproject", "shop", str(root), verbosity=0)
    package = root / "shop"
    with (package / "settings.py").open("a") as settings:
        settings.write("\n" + snippets("settings.py", optional=optional))
    with (package / "urls.py").open("a") as urls:
        urls.write("\n" + snippets("urls.py", optional=optional) + CRASH)
    return root


@pytest.fixture(scope="module")
def answers(project: Path) -> dict[str, Any]:
    output = run(project, "shell", "-c", SCRIPT)
    line = next(line for line in output.splitlines() if line.startswith("ANSWERS "))
    result: dict[str, Any] = json.loads(line.removeprefix("ANSWERS "))
    result["optional"] = not project.name.startswith("required")
    return result


def test_the_required_lines_are_apart_from_the_optional() -> None:
    required = snippets("settings.py", optional=False)
    assert "MicrokitMiddleware" in required
    assert "logging_config" not in required
    assert "schema_urls" not in snippets("urls.py", optional=False)
    assert "schema_urls" in snippets("urls.py", optional=True)


def test_the_project_checks_clean(project: Path) -> None:
    assert "System check identified no issues" in run(project, "check")


#: The clients of the API tests: the name suffix, and the problem's media type.
API_CLIENTS = [("", "application/problem+json"), ("-json", "application/json")]


@pytest.mark.parametrize(("client", "media_type"), API_CLIENTS)
@pytest.mark.parametrize("debug", [False, True])
def test_an_unknown_url_is_a_problem(
    answers: dict[str, Any], debug: bool, client: str, media_type: str
) -> None:
    answer = answers[f"unknown{client} {debug}"]
    assert (answer["status"], answer["type"]) == (404, media_type)
    body = json.loads(answer["body"])
    assert (body["code"], body["request_id"]) == ("not_found", answer["request_id"])


def test_a_browser_gets_djangos_page_under_debug_only(answers: dict[str, Any]) -> None:
    assert answers["unknown-browser True"]["type"].startswith("text/html")
    assert answers["unknown-browser False"]["type"] == "application/problem+json"


@pytest.mark.parametrize("view", ["crash", "api-crash"])
@pytest.mark.parametrize(("client", "media_type"), API_CLIENTS)
@pytest.mark.parametrize("debug", [False, True])
def test_an_unhandled_exception_is_a_problem(
    answers: dict[str, Any], debug: bool, client: str, media_type: str, view: str
) -> None:
    answer = answers[f"{view}{client} {debug}"]
    assert (answer["status"], answer["type"]) == (500, media_type)
    body = json.loads(answer["body"])
    assert body["code"] == "server_error"
    if debug:
        assert body["debug"]["exception"] == "RuntimeError: password=hunter2"
    else:
        assert "debug" not in body
        assert "hunter2" not in answer["body"]


@pytest.mark.parametrize("view", ["crash", "api-crash"])
def test_a_browser_gets_the_technical_500_page_under_debug_only(
    answers: dict[str, Any], view: str
) -> None:
    page = answers[f"{view}-browser True"]
    # Django 6 sends its technical page as bare text/html, 5.2 with a charset.
    assert page["status"] == 500
    assert page["type"].split(";")[0] == "text/html"
    assert "RuntimeError" in page["body"]
    answer = answers[f"{view}-browser False"]
    assert (answer["status"], answer["type"]) == (500, "application/problem+json")
    assert "hunter2" not in answer["body"]


@pytest.mark.parametrize(("client", "media_type"), API_CLIENTS)
@pytest.mark.parametrize("debug", [False, True])
def test_a_csrf_failure_is_a_403_problem(
    answers: dict[str, Any], debug: bool, client: str, media_type: str
) -> None:
    answer = answers[f"csrf{client} {debug}"]
    assert (answer["status"], answer["type"]) == (403, media_type)
    assert json.loads(answer["body"])["code"] == "csrf_failed"


@pytest.mark.parametrize(("client", "media_type"), API_CLIENTS)
@pytest.mark.parametrize("debug", [False, True])
def test_a_bad_host_is_a_400_problem(
    answers: dict[str, Any], debug: bool, client: str, media_type: str
) -> None:
    """Refused outside any view (``CommonMiddleware`` reads the host), where
    ``DEBUG``'s page for a JSON client is plain text."""
    answer = answers[f"host{client} {debug}"]
    assert (answer["status"], answer["type"]) == (400, media_type)
    assert json.loads(answer["body"])["code"] == "bad_request"
    assert "evil" not in answer["body"]


@pytest.mark.parametrize("debug", [False, True])
def test_a_post_without_its_slash_is_a_308(
    answers: dict[str, Any], debug: bool
) -> None:
    answer = answers[f"slash {debug}"]
    assert (answer["status"], answer["type"]) == (308, "application/json")
    assert json.loads(answer["body"])["code"] == "append_slash"


def test_the_probe_echoes_the_request_id(answers: dict[str, Any]) -> None:
    answer = answers["live False"]
    assert (answer["status"], answer["request_id"]) == (200, "req-1")


def test_the_schema_and_swagger_routes(answers: dict[str, Any]) -> None:
    schema = answers["schema False"]
    if not answers["optional"]:  # the optional urls line adds them
        assert (schema["status"], json.loads(schema["body"])["code"]) == (
            404,
            "not_found",
        )
        return
    assert (schema["status"], schema["type"]) == (
        200,
        "application/vnd.oai.openapi; charset=utf-8",
    )
    assert "openapi: 3" in schema["body"]
    docs = answers["docs False"]
    assert (docs["status"], docs["type"]) == (200, "text/html; charset=utf-8")
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/" in docs["body"]
    assert "cdn" not in docs["body"].lower()
