"""The house's floors are kept by the test command: `lint-imports` fails, naming both modules,
on each upward import the layered packages removed, and passes on the tree as it is."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint(tree: Path) -> subprocess.CompletedProcess[str]:
    """lint-imports with the project's contracts over the mailgate package under `tree`."""
    return subprocess.run(
        [str(LINT_IMPORTS), "--config", str(ROOT / "pyproject.toml"), "--no-cache"],
        cwd=tree,
        env={"PYTHONPATH": str(tree), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tree = tmp_path_factory.mktemp("pristine")
    shutil.copytree(ROOT / "mailgate", tree / "mailgate", ignore=shutil.ignore_patterns("*.pyc"))
    return tree


def test_the_tree_as_it_is_keeps_every_contract(pristine: Path) -> None:
    done = lint(pristine)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout


@pytest.mark.parametrize(
    ("module", "wrong_import", "said"),
    [
        # The daemon and the worker processes imported the composition root.
        ("service/daemon.py", "from mailgate.service import app", "mailgate.service.app"),
        ("service/workers.py", "from mailgate.service import app", "mailgate.service.app"),
        # The intake ran the pipeline (file ingest now lives in service/).
        ("intake/smtp.py", "from mailgate.flows import pipeline", "mailgate.flows"),
        # Routing looked up Message-IDs and bounce addresses in the outbox.
        ("desk/route.py", "from mailgate.outbound import outbox", "mailgate.outbound"),
        # The staff command parser looked up addresses in agents.
        ("reading/commands.py", "from mailgate.desk import agents", "mailgate.desk"),
        # The store knows nothing of what is built on it.
        ("store/spool.py", "from mailgate.reading import parse", "mailgate.reading"),
        # A library stays behind its one module.
        ("desk/tickets.py", "import jinja2", "jinja2"),
        # The daemon hosts the web desk only as a part the command line hands it.
        ("service/daemon.py", "from mailgate.web import server", "mailgate.web"),
        ("reports/listing.py", "import starlette", "starlette"),
    ],
)
def test_an_upward_import_fails_naming_both_modules(
    pristine: Path, tmp_path: Path, module: str, wrong_import: str, said: str
) -> None:
    tree = tmp_path / "tree"
    shutil.copytree(pristine, tree)
    path = tree / "mailgate" / module
    path.write_text(path.read_text() + f"\n{wrong_import}  # noqa\n")
    done = lint(tree)
    importer = "mailgate." + module.removesuffix(".py").replace("/", ".")
    assert done.returncode != 0
    assert "BROKEN" in done.stdout
    assert f"{importer} -> {said}" in done.stdout, done.stdout
