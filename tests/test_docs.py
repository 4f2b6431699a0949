"""The docs are kept honest: every setting and every check is documented."""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path
from types import ModuleType
from typing import Any

import django_microkit
from django_microkit.conf import DEFAULTS, Option

DOCS = Path(__file__).resolve().parent.parent / "docs"
CHECKS_SOURCE = Path(__file__).resolve().parent.parent / "django_microkit"


def _literal(cell: str) -> Any:
    """The first `code` literal of a table cell, as a Python value."""
    match = re.search(r"`([^`]*)`", cell)
    assert match, cell
    return ast.literal_eval(match.group(1))


def _same(documented: Any, default: Any) -> bool:
    """Equal, reading a documented list as the tuple a default may be."""
    if isinstance(default, tuple) and isinstance(documented, list):
        documented = tuple(documented)
    return bool(documented == default) and type(documented) is type(default)


def _documented_defaults(chunk: str) -> dict[str, list[str]]:
    """Each setting named in a table row of ``chunk``, with its default cells."""
    rows: dict[str, list[str]] = {}
    for line in chunk.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        key = re.fullmatch(r"`([A-Z_]+)`", cells[0])
        if key and len(cells) >= 3:
            rows.setdefault(key.group(1), []).append(cells[2])
    return rows


def test_every_setting_is_documented_with_its_default() -> None:
    text = (DOCS / "settings.md").read_text()
    chunks = text.split("\n## ")
    for name, value in DEFAULTS.items():
        if isinstance(value, Option):
            where = [c for c in chunks if f"`{name}`" in c]
            rows = {k: v for c in where for k, v in _documented_defaults(c).items()}
            cells = rows.get(name) or re.findall(
                rf"`{name}`[^\n]*?default (`[^`]*`)", text
            )
            assert any(_same(_literal(c), value.default) for c in cells), name
            continue
        (chunk,) = [
            c for c in chunks if f"`{name}`" in c.splitlines()[0] or f'["{name}"]' in c
        ][:1]
        rows = _documented_defaults(chunk)
        for key, option in value.items():
            assert any(
                _same(_literal(cell), option.default) for cell in rows.get(key, [])
            ), f"{name}.{key}: {rows.get(key)} != {option.default!r}"


CHECK_ID = r"django_microkit\.[EW]\d{3}"
TESTS = Path(__file__).resolve().parent


def _ids_in_code() -> set[str]:
    ids: set[str] = set()
    for path in CHECKS_SOURCE.rglob("*.py"):
        ids.update(re.findall(rf'"({CHECK_ID})"', path.read_text()))
    assert ids, "no check IDs found"
    return ids


def _check_sections() -> dict[str, list[str]]:
    """Each section of docs/checks.md: the IDs of its table rows, in order."""
    text = (DOCS / "checks.md").read_text()
    sections = {}
    for chunk in text.split("\n## ")[1:]:
        title, _, body = chunk.partition("\n")
        sections[title] = re.findall(rf"^\| `({CHECK_ID})` \|", body, re.MULTILINE)
    return sections


def test_every_check_id_is_documented_once() -> None:
    listed = [id_ for ids in _check_sections().values() for id_ in ids]
    twice = sorted(id_ for id_ in set(listed) if listed.count(id_) > 1)
    assert not twice, f"listed more than once in docs/checks.md: {twice}"
    missing = sorted(_ids_in_code() - set(listed))
    assert not missing, f"used in code, missing from docs/checks.md: {missing}"
    unused = sorted(set(listed) - _ids_in_code())
    assert not unused, f"listed in docs/checks.md, used nowhere in code: {unused}"


def test_check_ids_are_in_the_documented_order() -> None:
    # One section per concern, in the order of their ranges of ten; within
    # one, errors then warnings, each by number (as the page says at the top).
    ranges: list[int] = []
    for title, ids in _check_sections().items():
        if not ids:
            continue
        assert ids == sorted(ids), f"{title!r} is not in ID order: {ids}"
        tens = {int(id_[-3:]) // 10 for id_ in ids}
        assert len(tens) == 1, f"{title!r} mixes ranges of ten: {ids}"
        ranges.extend(tens)
    assert ranges == sorted(ranges) == sorted(set(ranges)), ranges


def test_retired_check_ids_stay_retired() -> None:
    text = (DOCS / "checks.md").read_text()
    retired = set(re.findall(rf"`({CHECK_ID})`", text.split("\n## Retired\n")[1]))
    assert retired, "no retired IDs found"
    assert not retired & _ids_in_code()
    assert not retired & {id_ for ids in _check_sections().values() for id_ in ids}


def test_every_check_id_is_provoked_by_a_test() -> None:
    tests = "".join(
        path.read_text() for path in TESTS.rglob("test_*.py") if path != Path(__file__)
    )
    for id_ in sorted(_ids_in_code()):
        short = id_.removeprefix("django_microkit.")
        assert f'"{id_}"' in tests or f'"{short}"' in tests, id_


def test_defaults_are_options_or_sections() -> None:
    for value in DEFAULTS.values():
        assert isinstance(value, Option) or all(
            isinstance(option, Option) for option in value.values()
        )


def library_modules() -> list[ModuleType]:
    """Every module of the library (not its migrations, management commands or
    the service template, which are not imported by name)."""
    modules = []
    for path in sorted(CHECKS_SOURCE.rglob("*.py")):
        parts = path.relative_to(CHECKS_SOURCE.parent).with_suffix("").parts
        if {"migrations", "commands", "service_template", "__main__"} & set(parts):
            continue
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules.append(importlib.import_module(".".join(parts)))
    return modules


def _public_modules() -> list[ModuleType]:
    """The library's modules a service may import from (not ``_private`` ones)."""
    return [
        module
        for module in library_modules()
        if not any(part.startswith("_") for part in module.__name__.split("."))
    ]


def _api_page() -> tuple[dict[str, list[str]], list[str]]:
    """The names docs/api.md lists under each module, and the package's re-exports."""
    listed: dict[str, list[str]] = {}
    text = (DOCS / "api.md").read_text()
    for chunk in text.split("\n## ")[1:]:
        heading, _, body = chunk.partition("\n")
        module = heading.strip("`")
        listed[module] = re.findall(r"^- `(\w+)`: ", body, re.MULTILINE)
    root = text.split("\n## `django_microkit`\n")[1].split("\n## ")[0]
    reexported = root.split("re-exports")[1].split("Each is described")[0]
    return listed, re.findall(r"`(\w+)`", reexported)


def test_the_api_page_lists_every_public_name_once() -> None:
    listed, reexported = _api_page()
    paths = [f"{module}.{name}" for module, names in listed.items() for name in names]
    objects = {
        path: getattr(importlib.import_module(module), name, None)
        for path, (module, _, name) in ((p, p.rpartition(".")) for p in paths)
    }
    public = {
        f"{module.__name__}.{name}": getattr(module, name)
        for module in _public_modules()
        for name in getattr(module, "__all__", ())
    }

    def elsewhere(path: str, value: Any) -> list[str]:
        name = path.rpartition(".")[2]
        return [
            where
            for where, other in objects.items()
            if where != path and where.rpartition(".")[2] == name and value is other
        ]

    twice = sorted({p for p in paths if paths.count(p) > 1 or elsewhere(p, objects[p])})
    extra = sorted(set(paths) - set(public))
    missing = sorted(
        path
        for path, value in public.items()
        if path not in objects and not elsewhere(path, value)
    )
    assert not (twice or extra or missing), (
        "docs/api.md is out of date.\n"
        f"  missing (in an __all__, not on the page): {missing}\n"
        f"  extra (on the page, in no __all__ of that module): {extra}\n"
        f"  listed twice (one object under two names or modules): {twice}"
    )
    assert reexported == [name for name in django_microkit.__all__ if name[0] != "_"]


def test_the_api_page_lists_names_in_order() -> None:
    listed, _reexported = _api_page()
    assert list(listed) == sorted(listed)
    for module, names in listed.items():
        assert names == sorted(names), module


def _definitions(body: list[ast.stmt]) -> list[str]:
    """The names a module body defines itself: classes, functions, and
    assignments to constants (``ALL_CAPS``) and type aliases (``CamelCase``),
    also under a top-level ``if`` or ``try``; not imports, and not TypeVars."""
    names: list[str] = []
    for node in body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.append(node.name)
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            value = node.value
            if isinstance(value, ast.Call) and getattr(value.func, "id", "") in (
                "TypeVar",
                "ParamSpec",
            ):
                continue
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names += [
                t.id for t in targets if isinstance(t, ast.Name) and t.id[0].isupper()
            ]
        elif isinstance(node, ast.If | ast.Try):
            names += _definitions(node.body) + _definitions(node.orelse)
    return names


def test_every_public_definition_is_in_its_modules_all() -> None:
    # A name without an underscore is public: it is in __all__ (so on the API
    # page, by the test above), or it is renamed with an underscore.
    unlisted = []
    for module in library_modules():
        assert module.__file__ is not None
        tree = ast.parse(Path(module.__file__).read_text())
        exported = set(getattr(module, "__all__", ()))
        unlisted += [
            f"{module.__name__}.{name}"
            for name in _definitions(tree.body)
            if not name.startswith("_") and name not in exported
        ]
    assert not unlisted, f"public by name, missing from __all__: {unlisted}"
