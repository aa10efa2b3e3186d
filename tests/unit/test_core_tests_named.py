"""Every module of `tray_app/core/` has a test file of its name, or its docstring says where it is
tested (a path under tests/ that exists): a reader of a module finds its tests without a search.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TEST_PATH = re.compile(r"\btests/[\w/]+\.py\b")


def untold(core: Path, tests: Path) -> list[str]:
    """The modules under `core` with neither a test of their name under `tests` nor a docstring
    naming an existing test file."""
    names = {path.name for path in tests.rglob("test_*.py")}
    missing: list[str] = []
    for path in sorted(core.rglob("*.py")):
        if path.name == "__init__.py":
            continue
        stem = path.stem
        if f"test_{stem}.py" in names or any(n.startswith(f"test_{stem}_") for n in names):
            continue
        doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
        named = [m.group(0) for m in TEST_PATH.finditer(doc.replace("\n", " "))]
        if not any((tests.parent / ref).is_file() for ref in named):
            missing.append(str(path.relative_to(core)))
    return missing


def test_every_core_module_has_its_tests_named() -> None:
    assert untold(ROOT / "tray_app" / "core", ROOT / "tests") == []


def test_a_module_without_either_is_named(tmp_path: Path) -> None:
    core = tmp_path / "tray_app" / "core"
    tests = tmp_path / "tests"
    (core / "wing").mkdir(parents=True)
    (tests / "unit").mkdir(parents=True)
    (tests / "unit" / "test_named.py").write_text("")
    (tests / "unit" / "test_other.py").write_text("")
    (core / "named.py").write_text('"""Has a test of its name."""\n')
    (core / "wing" / "told.py").write_text('"""Tested in tests/unit/test_other.py."""\n')
    (core / "wing" / "wrong.py").write_text('"""Tested in tests/unit/test_gone.py."""\n')
    (core / "silent.py").write_text('"""Says nothing about tests."""\n')
    assert untold(core, tests) == ["silent.py", "wing/wrong.py"]
