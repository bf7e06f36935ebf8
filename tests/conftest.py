from __future__ import annotations

import os
import shutil
import tempfile
import warnings
from pathlib import Path

import pytest

# Without an NVIDIA GPU, the cuda kernels are tested under numba-cuda's simulator. It must be
# chosen before numba is first imported; with a GPU, tests/gpu runs the kernels on it instead.
_GPU_HERE = Path("/dev/nvidia0").exists() or shutil.which("nvidia-smi") is not None
if "NUMBA_ENABLE_CUDASIM" not in os.environ and not _GPU_HERE:
    os.environ["NUMBA_ENABLE_CUDASIM"] = "1"

from npaccel._sysfs import Host  # noqa: E402  (after the simulator choice)

FIXTURES = Path(__file__).parent / "doctor" / "fixtures"


@pytest.fixture
def recorded():
    """A Host for a recorded or synthesized machine layout, by directory name."""

    def make(name: str) -> Host:
        path = FIXTURES / name
        assert path.is_dir(), f"no fixture {name!r} in {FIXTURES}"
        return Host(path)

    return make


def fork_as_nobody(child) -> str:
    """``child()`` in a forked child with uid/gid 65534 (root is refused no read or write):
    the text it returns, or 'TypeName: message' of an exception escaping it."""
    read_end, write_end = os.pipe()
    with warnings.catch_warnings():  # Python 3.12+ warns about forking with threads
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            os.close(read_end)
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
            try:
                result = child()
            except BaseException as exc:
                result = f"{type(exc).__name__}: {exc}"
            os.write(write_end, result.encode())
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        result = pipe.read().decode()
    os.waitpid(pid, 0)
    return result


def _run_as_nobody(call) -> str:
    """``call()`` as user 65534: its exception as 'TypeName: message', or 'no error'."""

    def child() -> str:
        call()
        return "no error"

    return fork_as_nobody(child)


@pytest.fixture
def forked_as_nobody():
    """`fork_as_nobody`: run a function returning text as user 65534 in a forked child."""
    return fork_as_nobody


@pytest.fixture
def shared_dir():
    """A directory user 65534 may write in (pytest's tmp_path is private to its owner)."""
    path = Path(tempfile.mkdtemp(prefix="npaccel-test-"))
    path.chmod(0o777)
    yield path
    shutil.rmtree(path)


@pytest.fixture
def as_nobody():
    """Run a call as user 65534 in a forked child; returns its error as text."""
    return _run_as_nobody
