"""``python -m django_microkit startservice``: the generated service is complete.

The fast tests generate a service and read what was written. The test marked
``template`` (tox env ``template``) generates a service with a wheel of this
checkout, lets the service's ``make test`` install it (with that wheel) into
its own virtual environment, and runs its linters, its deployment checks and
gunicorn.
"""

from __future__ import annotations

import json
import os
import shlex
import socket
import stat
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from importlib.metadata import distribution
from pathlib import Path
from typing import Any

import pytest
import yaml

from django_microkit import __version__
from django_microkit.__main__ import main
from django_microkit.service_auth.keys import generate_key
from django_microkit.startservice import (
    SOURCE_FILE,
    TEMPLATE_DIR,
    ServiceNameError,
    compatible_range,
    is_service_name,
    source_requirement,
    start_service,
    validate_service_name,
)

ROOT = Path(__file__).resolve().parent.parent
NAME = "stockroom"

EXPECTED_FILES = {
    ".dockerignore",
    ".env.example",
    ".github/workflows/ci.yml",
    ".gitignore",
    "Dockerfile",
    "Makefile",
    "README.md",
    "docker-compose.yml",
    "manage.py",
    "pyproject.toml",
    "requirements-microkit.txt",
    f"{NAME}/__init__.py",
    f"{NAME}/asgi.py",
    f"{NAME}/wsgi.py",
    f"{NAME}/urls.py",
    f"{NAME}/settings/__init__.py",
    f"{NAME}/settings/base.py",
    f"{NAME}/settings/development.py",
    f"{NAME}/settings/production.py",
    f"{NAME}/settings/test.py",
    f"{NAME}/items/__init__.py",
    f"{NAME}/items/apps.py",
    f"{NAME}/items/models.py",
    f"{NAME}/items/serializers.py",
    f"{NAME}/items/urls.py",
    f"{NAME}/items/views.py",
    f"{NAME}/items/migrations/__init__.py",
    f"{NAME}/items/migrations/0001_initial.py",
    "tests/__init__.py",
    "tests/conftest.py",
    "tests/test_items.py",
    "tests/test_operations.py",
}


def files_under(directory: Path) -> set[str]:
    return {
        path.relative_to(directory).as_posix()
        for path in directory.rglob("*")
        if path.is_file()
    }


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One generated service, shared by the tests that only read it."""
    return start_service(NAME, tmp_path_factory.mktemp("generated") / NAME)


# -- names and directories ---------------------------------------------------


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("", "not a valid service name"),
        ("Inventory", "not a valid service name"),
        ("inventoryService", "not a valid service name"),
        ("order-history", "not a valid service name"),
        ("order history", "not a valid service name"),
        ("1inventory", "not a valid service name"),
        ("_inventory", "not a valid service name"),
        ("inventory.api", "not a valid service name"),
        ("class", "not a valid service name"),
        ("import", "not a valid service name"),
        ("json", "already importable as a Python module"),
        ("os", "already importable as a Python module"),
        ("django", "already importable as a Python module"),
        ("django_microkit", "already importable as a Python module"),
    ],
)
def test_invalid_names_are_refused(name: str, reason: str, tmp_path: Path) -> None:
    with pytest.raises(ServiceNameError, match=reason):
        start_service(name, tmp_path / "service")

    assert not (tmp_path / "service").exists()


@pytest.mark.parametrize("name", ["inventory_svc", "order_history2", "x"])
def test_valid_names(name: str) -> None:
    validate_service_name(name)
    assert is_service_name(name)


@pytest.mark.parametrize("name", ["", "Orders", "order-history", "class", "a b"])
def test_is_service_name_refuses(name: str) -> None:
    assert not is_service_name(name)


def test_non_empty_directory_is_refused_and_left_alone(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("keep me")

    with pytest.raises(ServiceNameError) as error:
        start_service(NAME, tmp_path)

    assert f"{tmp_path} already exists and is not an empty directory" in str(
        error.value
    )
    assert {"notes.txt"} == files_under(tmp_path)
    assert (tmp_path / "notes.txt").read_text() == "keep me"


def test_a_file_in_the_way_is_refused(tmp_path: Path) -> None:
    (tmp_path / NAME).write_text("a file")

    with pytest.raises(ServiceNameError, match="not an empty directory"):
        start_service(NAME, tmp_path / NAME)

    assert (tmp_path / NAME).read_text() == "a file"


def test_an_empty_directory_is_used(tmp_path: Path) -> None:
    assert tmp_path == start_service(NAME, tmp_path)
    assert files_under(tmp_path) == EXPECTED_FILES


def test_directory_defaults_to_the_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)

    assert tmp_path / NAME == start_service(NAME)
    assert (tmp_path / NAME / "manage.py").is_file()


def test_an_empty_directory_named_after_the_service_on_the_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``mkdir stockroom && startservice stockroom``: the empty directory is
    importable as a namespace package, and is not a clash."""
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    (tmp_path / NAME).mkdir()

    assert start_service(NAME) == tmp_path / NAME
    assert files_under(tmp_path / NAME) == EXPECTED_FILES


def test_a_directory_of_that_name_elsewhere_on_the_path_clashes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / NAME).mkdir()

    with pytest.raises(ServiceNameError, match="already importable") as error:
        start_service(NAME, tmp_path / "elsewhere")

    assert str(tmp_path / NAME) in str(error.value)
    assert not (tmp_path / "elsewhere").exists()


# -- where django-microkit comes from ------------------------------------------


@pytest.mark.parametrize(
    ("direct_url", "requirement"),
    [
        (None, None),
        (
            {"url": "file:///src/django-microkit", "dir_info": {"editable": True}},
            "-e /src/django-microkit",
        ),
        (
            {"url": "file:///src/my%20kit", "dir_info": {"editable": True}},
            "-e '/src/my kit'",
        ),
        (
            {"url": "file:///src/django-microkit", "dir_info": {}},
            "django-microkit @ file:///src/django-microkit",
        ),
        (
            {
                "url": "file:///dist/django_microkit-0.1.0-py3-none-any.whl",
                "archive_info": {"hashes": {"sha256": "0" * 64}},
            },
            "django-microkit @ file:///dist/django_microkit-0.1.0-py3-none-any.whl",
        ),
        (
            {
                "url": "https://github.com/django-microkit/django-microkit.git",
                "vcs_info": {"vcs": "git", "commit_id": "4b7bd84"},
            },
            "django-microkit @ git+https://github.com/django-microkit/"
            "django-microkit.git@4b7bd84",
        ),
    ],
)
def test_source_requirement(direct_url: Any, requirement: str | None) -> None:
    assert requirement == source_requirement(direct_url)


def test_the_service_records_this_django_microkit(service: Path) -> None:
    """The line names where the running django-microkit was installed from: an
    editable checkout for a plain run, a wheel under tox."""
    direct_url = distribution("django-microkit").read_text("direct_url.json")
    expected = source_requirement(
        None if direct_url is None else json.loads(direct_url)
    )
    recorded = (service / SOURCE_FILE).read_text().splitlines()

    assert expected is not None
    assert recorded[-1] == expected
    assert all(line.startswith("#") for line in recorded[:-1])
    # The Makefile installs it with the service.
    assert f"-r {SOURCE_FILE} -e '.[dev]'" in (service / "Makefile").read_text()


def test_from_an_index_the_service_records_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An install from a package index has no ``direct_url.json``: the version
    range in pyproject.toml is all pip needs."""
    dist_info = tmp_path / "site" / "django_microkit-0.1.0.dist-info"
    dist_info.mkdir(parents=True)
    (dist_info / "METADATA").write_text(
        "Metadata-Version: 2.4\nName: django-microkit\nVersion: 0.1.0\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path / "site"))

    service = start_service(NAME, tmp_path / NAME)

    recorded = (service / SOURCE_FILE).read_text()
    assert recorded == (TEMPLATE_DIR / SOURCE_FILE).read_text()
    assert all(line.startswith("#") for line in recorded.splitlines())


def test_swagger_ui_comes_from_the_pinned_sidecar(service: Path) -> None:
    base = (service / NAME / "settings" / "base.py").read_text()
    assert '"drf_spectacular_sidecar",' in base
    assert '"SWAGGER_UI_DIST": "SIDECAR",' in base
    assert "drf-spectacular-sidecar>=" in (service / "pyproject.toml").read_text()


# -- what is generated ---------------------------------------------------------


def test_generated_files(service: Path) -> None:
    assert files_under(service) == EXPECTED_FILES


def test_every_placeholder_is_rendered(service: Path) -> None:
    leftovers = {
        path
        for path in files_under(service)
        if any(
            marker in (service / path).read_text()
            for marker in ("{{", "{%", "project_name", "secret_key")
        )
    }
    assert set() == leftovers


def test_name_is_substituted(service: Path) -> None:
    manage = (service / "manage.py").read_text()
    assert f'"{NAME}.settings.development"' in manage
    base = (service / NAME / "settings" / "base.py").read_text()
    assert f'SERVICE_NAME = "{NAME}"' in base
    assert f'ROOT_URLCONF = "{NAME}.urls"' in base
    assert f'name = "{NAME}"' in (service / "pyproject.toml").read_text()
    assert f"# {NAME}\n" in (service / "README.md").read_text()


def test_no_placeholders_left_for_the_developer(service: Path) -> None:
    text = "\n".join((service / path).read_text() for path in files_under(service))
    assert "TODO" not in text
    assert "FIXME" not in text
    assert "XXX" not in text


def test_development_and_test_get_a_generated_secret_key(
    service: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    other = start_service(NAME, tmp_path_factory.mktemp("other") / NAME)
    development = f"{NAME}/settings/development.py"

    assert "django-insecure-" in (service / development).read_text()
    assert (service / development).read_text() != (other / development).read_text()


def test_manage_py_is_executable(service: Path) -> None:
    assert (service / "manage.py").stat().st_mode & stat.S_IXUSR


def test_python_files_compile(service: Path) -> None:
    for path in sorted(files_under(service)):
        if path.endswith(".py"):
            compile((service / path).read_text(), path, "exec")


def test_pyproject(service: Path) -> None:
    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads((service / "pyproject.toml").read_text())

    assert project["project"]["name"] == NAME
    dependencies = project["project"]["dependencies"]
    assert f"django-microkit{compatible_range(__version__)}" in dependencies
    # Every dependency has a range: a lower and an upper bound.
    for requirement in (
        dependencies + project["project"]["optional-dependencies"]["dev"]
    ):
        assert ">=" in requirement and ",<" in requirement, requirement
    assert (
        f"{NAME}.settings.test"
        == (project["tool"]["pytest"]["ini_options"]["DJANGO_SETTINGS_MODULE"])
    )
    assert project["tool"]["mypy"]["strict"] is True
    assert project["tool"]["mypy"]["plugins"] == [
        "mypy_django_plugin.main",
        "mypy_drf_plugin.main",
    ]


@pytest.mark.parametrize(
    ("version", "expected"),
    [
        ("0.1.0", ">=0.1,<0.2"),
        ("0.12.3rc1", ">=0.12,<0.13"),
        ("1.4.0", ">=1.4,<2"),
        ("2.0", ">=2.0,<3"),
        ("0+unknown", ""),
    ],
)
def test_compatible_range(version: str, expected: str) -> None:
    assert expected == compatible_range(version)


def test_makefile_targets(service: Path) -> None:
    targets = {
        line.split(":", 1)[0]
        for line in (service / "Makefile").read_text().splitlines()
        if line and not line[0].isspace() and ":" in line and "=" not in line
    }
    assert {"run", "worker", "relay", "test", "lint"} <= targets


def test_ci_workflow(service: Path) -> None:
    workflow = yaml.safe_load((service / ".github/workflows/ci.yml").read_text())

    steps = workflow["jobs"]["test"]["steps"]
    commands = [step.get("run", "") for step in steps]
    assert "make lint" in commands
    assert "make test" in commands
    assert any("check --deploy" in command for command in commands)
    services = workflow["jobs"]["test"]["services"]
    assert services["postgres"]["image"].startswith("postgres:")
    assert services["redis"]["image"].startswith("redis:")


def test_readme_has_kubernetes_probes(service: Path) -> None:
    readme = (service / "README.md").read_text()
    block = readme.split("## Kubernetes probes", 1)[1].split("```yaml\n", 1)[1]
    container = yaml.safe_load(block.split("```", 1)[0])["containers"][0]

    assert {
        probe: container[probe]["httpGet"]["path"]
        for probe in ("livenessProbe", "readinessProbe", "startupProbe")
    } == {
        "livenessProbe": "/health/live",
        "readinessProbe": "/health/ready",
        "startupProbe": "/health/startup",
    }


# -- container files, read statically ------------------------------------------


def dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    """``(INSTRUCTION, arguments)`` pairs, continuation lines joined."""
    instructions = []
    logical = ""
    for line in text.splitlines():
        stripped = line.strip()
        if not logical and (not stripped or stripped.startswith("#")):
            continue
        if stripped.endswith("\\"):
            logical += stripped[:-1] + " "
            continue
        logical += stripped
        keyword, _, arguments = logical.partition(" ")
        instructions.append((keyword.upper(), arguments.strip()))
        logical = ""
    return instructions


def command_words(arguments: str) -> list[str]:
    """The words of a RUN/CMD/HEALTHCHECK CMD: exec form or shell form."""
    if arguments.startswith("["):
        words: list[str] = json.loads(arguments)
        return words
    return shlex.split(arguments)


def test_dockerfile(service: Path) -> None:
    instructions = dockerfile_instructions((service / "Dockerfile").read_text())
    by_keyword: dict[str, list[str]] = {}
    for keyword, arguments in instructions:
        by_keyword.setdefault(keyword, []).append(arguments)

    assert instructions[0][0] == "FROM"
    assert all(image.startswith("python:3.") for image in by_keyword["FROM"])
    # The final stage runs as a user other than root.
    final_stage = instructions[
        max(i for i, (keyword, _) in enumerate(instructions) if keyword == "FROM") :
    ]
    users = [arguments for keyword, arguments in final_stage if keyword == "USER"]
    assert users and users[-1] not in {"root", "0", "0:0"}
    assert f"DJANGO_SETTINGS_MODULE={NAME}.settings.production" in " ".join(
        by_keyword["ENV"]
    )

    [healthcheck] = by_keyword["HEALTHCHECK"]
    options, _, probe = healthcheck.partition(" CMD ")
    assert "--interval=" in options
    assert (command_words(probe.strip())) == [
        "python",
        "manage.py",
        "microkit_health",
        "--probe",
        "ready",
    ]

    [cmd] = by_keyword["CMD"]
    words = " ".join(command_words(cmd))
    assert f"gunicorn -c python:django_microkit.gunicorn {NAME}.wsgi:" in words
    assert "--bind 0.0.0.0:" in words


def test_docker_compose(service: Path) -> None:
    compose: dict[str, Any] = yaml.safe_load(
        (service / "docker-compose.yml").read_text()
    )
    services = compose["services"]

    assert {"app", "worker", "relay", "db", "cache", "broker", "prometheus"} == set(
        services
    )
    assert services["db"]["image"].startswith("postgres:")
    assert services["cache"]["image"].startswith("redis:")
    assert services["broker"]["image"].startswith("rabbitmq:")
    app = services["app"]
    assert app["build"] == "."
    environment = app["environment"]
    assert environment["DATABASE_URL"].startswith("postgres://")
    assert "@db:5432/" in environment["DATABASE_URL"]
    assert environment["REDIS_URL"].startswith("redis://cache:6379/")
    assert len(environment["DJANGO_SECRET_KEY"]) >= 50
    assert "microkit_health" in app["healthcheck"]["test"]
    assert environment["EVENTS_BROKER_URL"].startswith("amqp://")
    assert "@broker:5672/" in environment["EVENTS_BROKER_URL"]
    healthy = {"condition": "service_healthy"}
    assert app["depends_on"] == {"db": healthy, "cache": healthy, "broker": healthy}
    for dependency in ("db", "cache", "broker"):
        assert services[dependency]["healthcheck"]["test"][0] == "CMD"
    assert "-c python:django_microkit.gunicorn" in app["command"]
    # Prometheus scrapes the app's /metrics with the config the file holds.
    (config,) = services["prometheus"]["configs"]
    assert config["target"] == "/etc/prometheus/prometheus.yml"
    scrape = yaml.safe_load(compose["configs"][config["source"]]["content"])
    (job,) = scrape["scrape_configs"]
    assert (job["metrics_path"], job["static_configs"]) == (
        "/metrics",
        [{"targets": ["app:8000"]}],
    )
    # The events worker and relay: the same image and environment as the app,
    # started once the app (which migrates) is healthy.
    for name, command in [("worker", "microkit_consume"), ("relay", "microkit_relay")]:
        process = services[name]
        assert process["build"] == "."
        assert process["command"] == ["python", "manage.py", command]
        assert process["environment"] == environment
        assert process["depends_on"] == {**app["depends_on"], "app": healthy}


# -- the command line ------------------------------------------------------------


def test_cli_creates_a_service(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["startservice", NAME, str(tmp_path / "out")]) == 0

    output = capsys.readouterr()
    assert f"Created service '{NAME}' in {tmp_path / 'out'}" in output.out
    assert "make run" in output.out
    assert files_under(tmp_path / "out") == EXPECTED_FILES


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["startservice", "Bad-Name"], "error: 'Bad-Name' is not a valid service name"),
        (["startservice", "json"], "error: 'json' is already importable"),
    ],
)
def test_cli_refuses_bad_names(
    argv: list[str],
    message: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)

    assert main(argv) == 2

    assert message in capsys.readouterr().err
    assert set() == files_under(tmp_path)


def test_cli_refuses_a_non_empty_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "keep.txt").write_text("")

    assert main(["startservice", NAME, str(tmp_path)]) == 2

    assert "not an empty directory" in capsys.readouterr().err
    assert {"keep.txt"} == files_under(tmp_path)


def test_cli_templatedir(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["templatedir"]) == 0

    assert f"{TEMPLATE_DIR}\n" == capsys.readouterr().out
    assert (TEMPLATE_DIR / "manage.py-tpl").is_file()


def run_module(
    *args: str, cwd: Path, module: str = "django_microkit"
) -> subprocess.CompletedProcess[str]:
    """``python -m module args`` in a fresh process: no Django settings."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"DJANGO_SETTINGS_MODULE", "PYTHONPATH"}
    }
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_python_dash_m_startservice(tmp_path: Path) -> None:
    created = run_module("startservice", NAME, cwd=tmp_path)
    assert created.returncode == 0, created.stderr
    assert files_under(tmp_path / NAME) == EXPECTED_FILES

    again = run_module("startservice", NAME, cwd=tmp_path)
    assert again.returncode == 2
    assert "already exists and is not an empty directory" in again.stderr

    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "second").mkdir()
    into_empty = run_module("startservice", "second", cwd=tmp_path / "empty")
    assert into_empty.returncode == 0, into_empty.stderr

    usage = run_module(cwd=tmp_path)
    assert usage.returncode == 2
    assert "startservice" in usage.stderr


def test_the_image_installs_django_microkit_as_make_does(service: Path) -> None:
    """The Dockerfile, and so CI's image build, installs from the same
    requirements file as the Makefile."""
    instructions = dockerfile_instructions((service / "Dockerfile").read_text())
    build_stage = instructions[: [k for k, _ in instructions].index("FROM", 1)]

    copied = [
        arguments.split() for keyword, arguments in build_stage if keyword == "COPY"
    ]
    assert any(SOURCE_FILE in sources[:-1] for sources in copied)
    installs = [
        command_words(arguments)
        for keyword, arguments in build_stage
        if keyword == "RUN" and "install" in arguments
    ]
    assert installs == [["/venv/bin/pip", "install", "-r", SOURCE_FILE, "."]]
    assert SOURCE_FILE not in (service / ".dockerignore").read_text()


def test_django_admin_startproject_alternative(tmp_path: Path) -> None:
    """The command given in the docs for Django's own ``startproject``."""
    result = run_module(
        "startproject",
        NAME,
        str(tmp_path),
        "--template",
        str(TEMPLATE_DIR),
        "-e",
        "py,toml,yml,md,cfg,ini,txt,example",
        "-n",
        "Dockerfile,Makefile",
        "-x",
        "__pycache__",
        cwd=tmp_path,
        module="django",
    )

    assert result.returncode == 0, result.stderr
    assert files_under(tmp_path) == EXPECTED_FILES
    assert "{{" not in (tmp_path / "Dockerfile").read_text()


# -- the generated service, installed and run ------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def fetch(url: str, headers: dict[str, str] | None = None) -> tuple[int, str, str]:
    """``(status, Content-Type, body)`` of a GET, errors included."""
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return (
                response.status,
                response.headers["Content-Type"],
                response.read().decode(),
            )
    except urllib.error.HTTPError as error:
        return error.code, error.headers["Content-Type"], error.read().decode()


@pytest.fixture
def installed(tmp_path: Path) -> Iterator[tuple[Path, Path, dict[str, str]]]:
    """A service generated by this checkout's wheel, installed in a new
    virtualenv, and installed by its own ``make test``: ``(service, bin
    directory of the service's .venv, environment)``."""
    uv = pytest.importorskip("uv", reason="the template tests need uv")
    service = tmp_path / NAME
    venv = tmp_path / "venv"
    python = str(venv / "bin" / "python")
    env = {
        key: value
        for key, value in os.environ.items()
        if key
        not in {
            "DJANGO_SETTINGS_MODULE",
            "PYTHONPATH",
            "VIRTUAL_ENV",
            "DATABASE_URL",
            "REDIS_URL",
            "PYTHONDEVMODE",
        }
    }

    def run(*command: str) -> None:
        subprocess.run(command, check=True, env=env, cwd=tmp_path, timeout=300)

    uv_bin = uv.find_uv_bin()
    run(uv_bin, "venv", "--quiet", "--python", sys.executable, str(venv))
    dist = tmp_path / "dist"
    run(uv_bin, "build", "--quiet", "--wheel", "--out-dir", str(dist), str(ROOT))
    [wheel] = dist.glob("django_microkit-*.whl")
    run(uv_bin, "pip", "install", "--quiet", "--python", python, str(wheel))
    # The template as the wheel ships it.
    run(python, "-m", "django_microkit", "startservice", NAME, str(service))
    assert files_under(service) == EXPECTED_FILES
    source = (service / SOURCE_FILE).read_text().splitlines()[-1]
    assert source == f"django-microkit @ {wheel.as_uri()}"
    env["DATABASE_URL"] = f"sqlite:///{tmp_path / 'service.sqlite3'}"
    yield service, service / ".venv" / "bin", env


@pytest.mark.template
def test_generated_service_installs_passes_its_checks_and_serves(
    installed: tuple[Path, Path, dict[str, str]],
) -> None:
    service, bin_dir, env = installed

    def run(*command: str, **extra_env: str) -> str:
        result = subprocess.run(
            command,
            cwd=service,
            env={**env, **extra_env},
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert result.returncode == 0, (command, result.stdout, result.stderr)
        return result.stdout + result.stderr

    # The service's own make: a .venv with the wheel recorded by startservice.
    assert "passed" in run("make", "test", PYTHON=sys.executable)
    python = str(bin_dir / "python")
    run(str(bin_dir / "ruff"), "check", "--no-cache", ".")
    run(str(bin_dir / "ruff"), "format", "--check", "--no-cache", ".")
    assert "Success" in run(str(bin_dir / "mypy"), "--cache-dir", os.devnull)
    assert "No changes detected" in run(
        python, "manage.py", "makemigrations", "--check", "--dry-run"
    )

    production = {
        "DJANGO_SETTINGS_MODULE": f"{NAME}.settings.production",
        "DJANGO_SECRET_KEY": "production-like-" + os.urandom(32).hex(),
        "DJANGO_ALLOWED_HOSTS": f"{NAME}.internal,127.0.0.1",
    }
    # A deployment names its events broker and signs the events it publishes.
    signing_key, _ = generate_key("EdDSA")
    assert "no issues" in run(
        python,
        "manage.py",
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        REDIS_URL="redis://127.0.0.1:6379/0",
        EVENTS_BROKER_URL="amqp://guest:guest@127.0.0.1:5672//",
        SERVICE_KEY_ID=f"{NAME}-1",
        SERVICE_SIGNING_KEY=signing_key,
        **production,
    )
    run(python, "manage.py", "migrate", "--noinput", **production)

    port = free_port()
    log_path = service.parent / "gunicorn.log"
    with log_path.open("w") as log:
        server = subprocess.Popen(
            [
                str(bin_dir / "gunicorn"),
                f"{NAME}.wsgi:application",
                "--bind",
                f"127.0.0.1:{port}",
                "--workers",
                "1",
            ],
            cwd=service,
            env={**env, **production},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        ready: tuple[int, str, str] | None = None
        while time.monotonic() < deadline and server.poll() is None:
            try:
                ready = fetch(f"{base}/health/ready")
                break
            except OSError:
                time.sleep(0.2)
        assert ready is not None, log_path.read_text()
        status, content_type, body = ready
        assert (status, content_type) == (200, "application/health+json"), body
        assert json.loads(body)["status"] == "pass"

        # Behind the TLS-terminating proxy that production settings expect.
        status, content_type, body = fetch(
            f"{base}/no-such-page/", {"X-Forwarded-Proto": "https"}
        )
        assert (status, content_type) == (404, "application/problem+json"), body
        assert json.loads(body)["code"] == "not_found"
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    # One JSON access line per request, with its request ID.
    lines = [
        json.loads(line)
        for line in log_path.read_text().splitlines()
        if line.startswith("{")
    ]
    access = [line for line in lines if line.get("path") == "/no-such-page/"]
    assert [(line["status"], len(line["request_id"])) for line in access] == [(404, 32)]
