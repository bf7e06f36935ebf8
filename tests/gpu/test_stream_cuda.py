"""npaccel.cuda.stream_map and to_device_batches on a real GPU: results equal NumPy's,
copies come from and go to pinned memory, and CUDA events show a batch's host→device copy
running while the previous batch computes on another stream (an ordering of event
timestamps, no speed threshold)."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from gpu_support import require_device

pytestmark = pytest.mark.gpu
cupy = require_device()

from npaccel.cuda import _stream  # noqa: E402
from npaccel.cuda._stream import THREAD_PREFIX, stream_map, to_device_batches  # noqa: E402
from npaccel.cuda._stream_ops import CupyOps  # noqa: E402

SPIN = cupy.RawKernel(
    r"""
extern "C" __global__ void spin(long long cycles) {
    long long start = clock64();
    while (clock64() - start < cycles) { }
}
""",
    "spin",
)


def stage_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith(THREAD_PREFIX)]


def spin_ms(ms: float) -> None:
    """Keep the current stream busy for about ``ms`` milliseconds (one thread spinning)."""
    device = cupy.cuda.Device()
    khz = device.attributes.get("ClockRate") or cupy.cuda.runtime.getDeviceProperties(
        device.id
    ).get("clockRate", 1_500_000)
    SPIN((1,), (1,), (np.int64(khz * ms),))


def host_batches(seed: int) -> list:
    rng = np.random.default_rng(seed)
    shapes = [(257, 129), (0, 7), (1,), (3, 1 << 20), (64, 33, 5), (2048, 1025)]  # 12 MiB one
    return [rng.standard_normal(shape).astype(np.float32) for shape in shapes]


@pytest.mark.parametrize(("streams", "copy"), [(1, True), (2, False), (3, True), (4, False)])
def test_results_equal_numpy(streams, copy):
    batches = host_batches(streams)
    results = stream_map(lambda x: x * 2 + 1, batches, streams=streams, copy=copy)
    for batch, result in zip(batches, results, strict=True):
        assert isinstance(result, np.ndarray)
        np.testing.assert_array_equal(result, batch * 2 + 1)
    assert stage_threads() == []


def test_tuples_dtype_changes_and_non_contiguous_inputs():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((300, 40))
    batches = [(X[k : k + 50].T, np.arange(k, k + 50, dtype=">i4")) for k in range(0, 300, 50)]

    def func(xy):
        x, y = xy
        return x.astype(cupy.float32).sum(axis=0), (y % 7 == 0)

    for (x, y), (a, b) in zip(batches, stream_map(func, batches, streams=2), strict=True):
        np.testing.assert_allclose(a, x.astype(np.float32).sum(axis=0), rtol=1e-5)
        np.testing.assert_array_equal(b, y % 7 == 0)


class RecordingOps(CupyOps):
    """CuPy ops that check where copies read and write, and time them with events."""

    def __init__(self) -> None:
        super().__init__(cupy)
        self.kinds: list[int] = []
        self.marks: list[tuple[str, object, object]] = []

    def _timed(self, stream):
        event = cupy.cuda.Event()  # timing enabled
        event.record(stream)
        return event

    def _memory_type(self, array: np.ndarray) -> int:
        return int(cupy.cuda.runtime.pointerGetAttributes(array.ctypes.data).type)

    def h2d(self, dst, src, stream):
        self.kinds.append(self._memory_type(src))
        start = self._timed(stream)
        super().h2d(dst, src, stream)
        self.marks.append(("h2d", start, self._timed(stream)))

    def d2h(self, dst, src, stream):
        self.kinds.append(self._memory_type(dst))
        super().d2h(dst, src, stream)

    def call(self, func, argument, stream):
        start = self._timed(stream)
        result = func(argument)
        self.marks.append(("func", start, self._timed(stream)))
        return result

    def intervals(self, kind: str) -> list[tuple[float, float]]:
        cupy.cuda.Device().synchronize()
        origin = self.marks[0][1]
        return [(cupy.cuda.get_elapsed_time(origin, a), cupy.cuda.get_elapsed_time(origin, b))
                for k, a, b in self.marks if k == kind]  # fmt: skip


def test_copies_use_pinned_memory_only(monkeypatch):
    ops = RecordingOps()
    monkeypatch.setattr(_stream, "_default_ops", lambda: ops)
    list(stream_map(lambda x: x + 1, [np.ones((1000, 10))] * 5, streams=2))
    host_type = int(cupy.cuda.runtime.memoryTypeHost)
    assert ops.kinds == [host_type] * 10
    # the check can fail: plain NumPy memory is not registered with CUDA
    assert ops._memory_type(np.ones(1000)) != host_type


@pytest.mark.parametrize("streams", [1, 2])
def test_events_show_the_next_copy_in_running_during_compute(monkeypatch, streams):
    ops = RecordingOps()
    monkeypatch.setattr(_stream, "_default_ops", lambda: ops)
    batches = [np.ones(4 << 20, dtype=np.float32)] * 6  # 16 MiB each

    spin_ms(0.01)  # compiled before the measured run
    cupy.cuda.Device().synchronize()

    def slow_double(x):
        spin_ms(5.0)
        return x * 2

    for result in stream_map(slow_double, batches, streams=streams, copy=False):
        assert result[0] == 2.0
    copies, computes = ops.intervals("h2d"), ops.intervals("func")
    overlapped = [copies[i + 1][0] < computes[i][1] for i in range(len(batches) - 1)]
    if streams == 1:  # one stream runs everything in order: the next copy waits
        assert not any(overlapped)
    else:
        assert any(overlapped)


def test_to_device_batches_from_a_loader_on_the_callers_stream():
    from npaccel.data import ArrayLoader

    X = np.arange(4000, dtype=np.float32).reshape(1000, 4)
    y = np.arange(1000)
    loader = ArrayLoader((X, y), 64, shuffle="full", seed=0)
    sums = []
    with cupy.cuda.Stream(non_blocking=True):  # the caller's own stream
        for Xd, yd in to_device_batches(loader, streams=2):
            assert isinstance(Xd, cupy.ndarray)
            spin_ms(0.2)  # queued work still reading a batch when the next one is fetched
            sums.append((Xd[:, 0] - 4 * yd).sum())
        total = cupy.asnumpy(cupy.stack(sums))
    np.testing.assert_array_equal(total, np.zeros(len(loader)))


def test_early_close_leaves_nothing_running():
    results = stream_map(lambda x: x + 1, (np.ones(1 << 20) for _ in range(100)), streams=3)
    assert next(results)[0] == 2.0
    results.close()
    assert stage_threads() == []
    cupy.cuda.Device().synchronize()
