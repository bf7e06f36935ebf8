"""The project's promises about itself: the README's two commands and CI agree."""

from __future__ import annotations

import re
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).parent.parent


def _quick_start_commands() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```bash\n(.*?)```", section, re.DOTALL)
    assert block, "Quick start needs a bash block"
    return [line for line in block[1].splitlines() if line.strip()]


def test_quick_start_has_exactly_two_commands():
    commands = _quick_start_commands()
    assert len(commands) == 2
    assert "npaccel" in commands[0]
    assert "pytest" not in commands[0]
    assert commands[1].rstrip().endswith("pytest")


def test_ci_runs_the_readme_test_command_verbatim_and_ruff():
    ci = (ROOT / ".ci" / "run").read_text()
    assert _quick_start_commands()[1] in ci.splitlines()
    assert "ruff check" in ci
    assert "set -euo pipefail" in ci


def test_installed_package_metadata():
    meta = metadata.metadata("npaccel")
    assert meta["Requires-Python"] == ">=3.10"
    assert set(meta.get_all("Provides-Extra")) >= {"gpu", "dask", "image"}
    scripts = {ep.name: ep.value for ep in metadata.entry_points(group="console_scripts")}
    assert scripts["npaccel"] == "npaccel.cli:main"
    assert (ROOT / "uv.lock").is_file()
    assert (ROOT / "src" / "npaccel" / "py.typed").is_file()
