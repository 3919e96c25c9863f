"""The code is one package, `fieldledger`, and the wheel holds all of it.

src/ is installed as `fieldledger`: `import src...` would load a second copy of
every class (isinstance then fails silently), so it is banned (ruff TID251,
this scan, and src/__init__.py refusing to load under another name). The wheel
is built by setup.py's discovery: every subpackage and data file under src/
must be in it.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src"
#: `import src`, `import src.x`, `from src import x`, `from src.x import y`,
#: and `import_module("src.x")`.
SRC_IMPORT = re.compile(
    r"^\s*(?:import\s+src(?:\.|\s|$)|from\s+src(?:\.|\s))|import_module\(\s*['\"]src[.'\"]",
    re.MULTILINE,
)


def _python_files() -> list[Path]:
    return [
        p for top in ("src", "tests", "bench") for p in (ROOT / top).rglob("*.py")
        if "__pycache__" not in p.parts
    ]  # fmt: skip


def test_no_module_imports_src_by_its_folder_name() -> None:
    offenders = [
        f"{p.relative_to(ROOT)}: {m.group(0).strip()}"
        for p in _python_files()
        if p != Path(__file__).resolve()  # its own examples
        for m in SRC_IMPORT.finditer(p.read_text("utf-8"))
    ]
    assert offenders == []


def test_the_scan_finds_each_way_of_importing_src() -> None:
    for line in ["import src", "import src.domain.facts", "from src.domain import facts",
                 "from src import domain", "  from src.api.app import create_app",
                 "importlib.import_module('src.domain')"]:  # fmt: skip
        assert SRC_IMPORT.search(line), line
    for line in ["import fieldledger.domain", "from fieldledger import src_dir",
                 "import srcery", "source = 'src/domain'"]:  # fmt: skip
        assert not SRC_IMPORT.search(line), line


def test_src_refuses_to_load_under_its_folder_name() -> None:
    run = subprocess.run(
        [sys.executable, "-c", "import src.domain.facts"],
        cwd=ROOT, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert run.returncode != 0
    assert "import fieldledger..., not src" in run.stderr


def _project_files() -> list[Path]:
    """What a checkout holds under src/ (compiled Python aside)."""
    return sorted(
        p for p in SRC.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix not in (".pyc", ".pyo")
    )  # fmt: skip


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    """The wheel, built from a copy of the project as it is on disk (new files too)."""
    tree = tmp_path_factory.mktemp("project")
    for name in ("pyproject.toml", "setup.py", "README.md"):
        shutil.copy(ROOT / name, tree / name)
    shutil.copytree(SRC, tree / "src", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    out = tmp_path_factory.mktemp("wheel")
    run = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(out), str(tree)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    (built,) = out.glob("fieldledger-*.whl")
    return zipfile.ZipFile(built)


def test_the_wheel_holds_every_module_and_data_file(wheel: zipfile.ZipFile) -> None:
    names = set(wheel.namelist())
    expected = {"fieldledger/" + p.relative_to(SRC).as_posix() for p in _project_files()}
    assert expected - names == set()
    # The data the service reads at run time, by name (a guard on the scan itself).
    for data in ["fieldledger/domain/default_policy.toml",
                 "fieldledger/api/console/templates/base.html",
                 "fieldledger/api/console/static/console.css",
                 "fieldledger/api/console/locales/zh_CN/LC_MESSAGES/messages.po"]:  # fmt: skip
        assert data in names
    # Nothing but the package (and its metadata): no `src`, no tests, no caches.
    stray = {n for n in names if not n.startswith(("fieldledger/", "fieldledger-"))}
    assert stray == set()
    assert not any("__pycache__" in n or n.endswith(".pyc") for n in names)


def test_every_folder_under_src_is_a_package_of_the_wheel(wheel: zipfile.ZipFile) -> None:
    names = set(wheel.namelist())
    folders = {p.parent for p in _project_files() if p.suffix == ".py"}
    assert folders, "no Python under src/"
    for folder in folders:
        package = "/".join(["fieldledger", *folder.relative_to(SRC).parts])
        assert f"{package}/__init__.py" in names
