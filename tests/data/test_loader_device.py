"""ArrayLoader(device='cuda'): the host batches, in the same order, delivered through
npaccel.cuda.to_device_batches. Under numba-cuda's simulator its device is host memory, so
the batches are NumPy arrays here; tests/gpu/test_stream_cuda.py runs it on a GPU."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from npaccel.cuda import _stream
from npaccel.cuda._device import simulated
from npaccel.data import ArrayLoader
from npaccel.data._loader import THREAD_PREFIX

pytestmark = pytest.mark.skipif(not simulated(), reason="needs numba-cuda's simulator; on a "
                                "GPU tests/gpu runs the device path")  # fmt: skip


def _data():
    X = np.arange(200 * 3, dtype=np.float32).reshape(200, 3)
    return X, np.arange(200)


@pytest.mark.parametrize("shuffle", ["block", "full", "none"])
def test_device_batches_equal_the_host_batches(shuffle):
    X, y = _data()
    host = ArrayLoader((X, y), 16, shuffle=shuffle, seed=3, block_bytes=64, window_blocks=2,
                       copy=True)  # fmt: skip
    device = ArrayLoader((X, y), 16, shuffle=shuffle, seed=3, block_bytes=64, window_blocks=2,
                         device="cuda")  # fmt: skip
    want = [(a.copy(), b.copy()) for a, b in host]
    got = list(device)
    assert len(got) == len(want) == len(device)
    for (gx, gy), (wx, wy) in zip(got, want, strict=True):
        np.testing.assert_array_equal(gx, wx)
        np.testing.assert_array_equal(gy, wy)
    assert sorted(np.concatenate([b for _, b in got]).tolist()) == list(range(200))


def test_device_iteration_has_the_epoch_len_and_stops_on_close():
    X, _ = _data()
    loader = ArrayLoader(X, 10, seed=1, device="cuda")
    it = iter(loader)
    assert (it.epoch, len(it)) == (0, 20)
    first = next(it)
    assert first.shape == (10, 3)
    it.close()
    it.close()  # idempotent
    with pytest.raises(StopIteration):
        next(it)
    prefixes = (THREAD_PREFIX, _stream.THREAD_PREFIX)
    assert not [t for t in threading.enumerate() if t.name.startswith(prefixes)]
    with iter(loader) as second:
        assert second.epoch == 1


def test_cpu_device_is_the_host_and_bad_devices_are_refused():
    X, _ = _data()
    assert ArrayLoader(X, 4, device="cpu").device is None
    with pytest.raises(ValueError, match=r"`device` must be one of \{None, 'cpu', 'cuda'\}; "
                       r"got 'gpu'"):  # fmt: skip
        ArrayLoader(X, 4, device="gpu")
