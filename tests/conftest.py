from __future__ import annotations

from pathlib import Path

import pytest

from npaccel._sysfs import Host

FIXTURES = Path(__file__).parent / "doctor" / "fixtures"


@pytest.fixture
def recorded():
    """A Host for a recorded or synthesized machine layout, by directory name."""

    def make(name: str) -> Host:
        path = FIXTURES / name
        assert path.is_dir(), f"no fixture {name!r} in {FIXTURES}"
        return Host(path)

    return make
