"""Fixtures of the npaccel.bench tests; the helpers themselves are in ``_helpers``."""

from __future__ import annotations

import pytest

from ._helpers import make_case, tiny_run


@pytest.fixture(scope="session")
def bench_doc() -> dict:
    """A real result document from a tiny run: peaks, an ok case, a wrong one, a skipped
    one, an error, and a case with no roof. Treat as read-only (copy before editing)."""
    return tiny_run([
        make_case("toy.add", work=(1024.0, "items")),
        make_case("toy.wrong", wrong=True),
        make_case("toy.skipped", requires=("module_that_does_not_exist",)),
        make_case("toy.error", setup_error=RuntimeError("no data")),
        make_case("toy.noroof", roof="none"),
    ])  # fmt: skip
