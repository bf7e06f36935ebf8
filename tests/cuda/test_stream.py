"""npaccel.cuda.stream_map and to_device_batches, scheduled against a fake GPU.

The fake (:class:`FakeOps`) runs each stream on a worker thread, delays every copy by a
random time, and poisons memory whose contents are not defined yet: a device→host
destination is filled with 0xA5 from the moment the copy is queued until it lands, a
host→device copy reads its pinned source when it *completes* (and reports the source
changing while it was queued), a released pinned buffer is poisoned, and copies from or
to memory that is not one of its pinned buffers are reported. So a pipeline that refills a
buffer too early, hands a result over before its copy finished, or frees a buffer a copy
still uses, gives wrong numbers or a recorded error. Two tests break the pipeline on
purpose to show that these checks catch it.
"""

from __future__ import annotations

import collections
import contextlib
import doctest
import gc
import random
import threading
import time
from typing import Any

import numpy as np
import pytest

import npaccel.cuda
from npaccel.cuda import _stream
from npaccel.cuda._device import simulated
from npaccel.cuda._stream import THREAD_PREFIX, stream_map, to_device_batches
from npaccel.data import ArrayLoader

POISON = 0xA5
WAIT_S = 10.0


class FakeDeviceArray(np.ndarray):
    """Device memory of the fake GPU (so a host array returned by ``func`` is told apart)."""


def _root(array: np.ndarray) -> np.ndarray:
    while isinstance(array.base, np.ndarray):
        array = array.base
    return array


class FakeStream:
    """A CUDA stream: operations run in order, later, on a worker thread."""

    def __init__(self, ops: FakeOps, name: str) -> None:
        self.ops = ops
        self.name = name
        self.tasks: collections.deque[Any] = collections.deque()
        self.pending = 0
        self.cond = threading.Condition()
        self.thread = threading.Thread(target=self._work, daemon=True, name=f"fake-{name}")
        self.thread.start()

    def submit(self, task: Any) -> None:
        with self.cond:
            self.pending += 1
            self.tasks.append(task)
            self.cond.notify_all()

    def _work(self) -> None:
        while True:
            with self.cond:
                while not self.tasks:
                    self.cond.wait()
                task = self.tasks.popleft()
            if task is None:
                return
            try:
                task()
            except BaseException as exc:  # pragma: no cover - reported by the checks
                self.ops.error(f"{self.name}: {exc!r}")
            with self.cond:
                self.pending -= 1
                self.cond.notify_all()

    def drain(self) -> None:
        with self.cond:
            if not self.cond.wait_for(lambda: self.pending == 0, WAIT_S):
                self.ops.error(f"{self.name} did not drain")

    def stop(self) -> None:
        self.submit(None)
        self.thread.join(WAIT_S)


class FakeOps:
    """The ops interface of npaccel.cuda._stream_ops, with late copies and poison."""

    device_kind = "a fake device array"

    def __init__(self, seed: int = 0, max_delay: float = 0.002, h2d_delay: float | None = None,
                 d2h_delay: float | None = None) -> None:  # fmt: skip
        self.rng = random.Random(seed)
        self.max_delay = max_delay
        self.h2d_delay, self.d2h_delay = h2d_delay, d2h_delay
        self.lock = threading.Lock()
        self.errors: list[str] = []
        self.live: dict[int, np.ndarray] = {}  # pinned buffers held
        self.allocated = 0
        self.peak_live = 0
        self.in_flight: collections.Counter[int] = collections.Counter()  # pinned root -> copies
        self.streams: list[FakeStream] = []
        self.log: list[tuple[str, str]] = []
        self.local = threading.local()

    # ---- bookkeeping

    def error(self, text: str) -> None:
        with self.lock:
            self.errors.append(text)

    def _delay(self, fixed: float | None) -> float:
        if fixed is not None:
            return fixed
        with self.lock:
            return self.rng.uniform(0, self.max_delay)

    def _pinned_root(self, array: np.ndarray, what: str) -> int:
        root = _root(array)
        if id(root) not in self.live:
            self.error(f"{what} uses memory that is not a live pinned buffer")
        return id(root)

    def _log(self, op: str, stream: FakeStream | None) -> None:
        with self.lock:
            self.log.append((op, "caller" if stream is None else stream.name))

    def shutdown(self) -> None:
        for stream in self.streams:
            stream.stop()

    def check_clean(self) -> None:
        """After a pass: no error, no pinned buffer held, no copy queued, no thread left."""
        assert self.errors == []
        assert self.live == {}, f"{len(self.live)} pinned buffers not released"
        assert all(s.pending == 0 for s in self.streams)
        assert sum(self.in_flight.values()) == 0
        assert stage_threads() == []

    # ---- the interface

    def activate(self) -> contextlib.AbstractContextManager[Any]:
        return contextlib.nullcontext()

    def new_stream(self) -> FakeStream:
        stream = FakeStream(self, f"stream{len(self.streams)}")
        self.streams.append(stream)
        return stream

    def current_stream(self) -> FakeStream | None:
        return getattr(self.local, "stream", None)  # None: the caller's (host-ordered) stream

    @contextlib.contextmanager
    def on(self, stream: FakeStream):
        previous, self.local.stream = self.current_stream(), stream
        try:
            yield
        finally:
            self.local.stream = previous

    def call(self, func: Any, argument: Any, stream: FakeStream) -> Any:
        stream.drain()  # func computes on the host here: the stream's copies must be done
        return func(argument)

    def pinned(self, nbytes: int) -> np.ndarray:
        buffer = np.full(nbytes, POISON, dtype=np.uint8)
        with self.lock:
            self.live[id(buffer)] = buffer
            self.allocated += 1
            self.peak_live = max(self.peak_live, len(self.live))
        return buffer

    def release(self, buffer: np.ndarray) -> None:
        with self.lock:
            if self.in_flight[id(buffer)]:
                self.errors.append("a pinned buffer was released with a copy in flight")
            if self.live.pop(id(buffer), None) is None:
                self.errors.append("a pinned buffer was released twice")
        buffer.fill(POISON)

    def device_empty(self, nbytes: int, stream: FakeStream) -> FakeDeviceArray:
        self._log("alloc", stream)
        return np.full(nbytes, POISON, dtype=np.uint8).view(FakeDeviceArray)

    def h2d(self, dst: np.ndarray, src: np.ndarray, stream: FakeStream) -> None:
        self._log("h2d", stream)
        root = self._pinned_root(src, "a host->device copy")
        snapshot = src.copy()
        with self.lock:
            self.in_flight[root] += 1
        delay = self._delay(self.h2d_delay)

        def land() -> None:
            time.sleep(delay)
            if not np.array_equal(src, snapshot):
                self.error("a pinned input was overwritten while its host->device copy was queued")
            dst[...] = src
            with self.lock:
                self.in_flight[root] -= 1

        stream.submit(land)

    def d2h(self, dst: np.ndarray, src: np.ndarray, stream: FakeStream) -> None:
        self._log("d2h", stream)
        root = self._pinned_root(dst, "a device->host copy")
        dst[...] = POISON  # undefined until the copy lands
        with self.lock:
            self.in_flight[root] += 1
        delay = self._delay(self.d2h_delay)

        def land() -> None:
            time.sleep(delay)
            dst[...] = np.asarray(src).reshape(-1).view(np.uint8)
            with self.lock:
                self.in_flight[root] -= 1

        stream.submit(land)

    def record(self, stream: FakeStream | None) -> threading.Event:
        self._log("record", stream)
        event = threading.Event()
        if stream is None:
            event.set()
        else:
            stream.submit(event.set)
        return event

    def wait_event(self, stream: FakeStream | None, event: threading.Event) -> None:
        self._log("wait", stream)
        if stream is None:
            self.synchronize(event)
        else:
            stream.submit(lambda: self.synchronize(event))

    def synchronize(self, event: threading.Event) -> None:
        if not event.wait(WAIT_S):
            self.error("an event never completed")

    def synchronize_stream(self, stream: FakeStream) -> None:
        stream.drain()

    def as_device_array(self, value: Any) -> Any:
        return value if isinstance(value, FakeDeviceArray) else None

    def contiguous(self, array: np.ndarray) -> np.ndarray:
        return array if array.flags.c_contiguous else array.copy(order="C")


def stage_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith(THREAD_PREFIX)]


@pytest.fixture
def fake(monkeypatch):
    """Install a FakeOps (``fake(seed=..., ...)`` makes it) as the pipeline's ops."""
    made: list[FakeOps] = []

    def make(**kwargs: Any) -> FakeOps:
        ops = FakeOps(**kwargs)
        made.append(ops)
        monkeypatch.setattr(_stream, "_default_ops", lambda: ops)
        return ops

    yield make
    for ops in made:
        ops.shutdown()


def random_batches(rng: np.random.Generator, count: int, dtype: str = "float32",
                   max_rows: int = 9) -> list[np.ndarray]:  # fmt: skip
    """Batches whose shapes change (rows 0..max_rows, 1 or 2 trailing axes)."""
    out = []
    for _ in range(count):
        trailing = rng.integers(1, 6, size=int(rng.integers(1, 3))).tolist()
        shape = (int(rng.integers(0, max_rows + 1)), *trailing)
        out.append((rng.standard_normal(shape) * 100).astype(dtype))
    return out


def affine(x):
    return x * 2 + 1


# ---------------------------------------------------------------- ordering, results


@pytest.mark.parametrize(
    ("streams", "copy", "seed"), [(1, True, 0), (2, False, 1), (3, True, 2), (4, False, 3)]
)
def test_results_equal_func_in_input_order(fake, streams, copy, seed):
    ops = fake(seed=seed)
    rng = np.random.default_rng(seed)
    batches = random_batches(rng, 40, "float32" if seed % 2 else "int16")
    got = 0
    for i, result in enumerate(stream_map(affine, iter(batches), streams=streams, copy=copy)):
        expected = batches[i] * 2 + 1
        assert type(result) is np.ndarray  # a host array, not the fake device type
        assert result.dtype == expected.dtype
        assert result.shape == expected.shape
        np.testing.assert_array_equal(result, expected)  # checked before the next next()
        got += 1
    assert got == len(batches)
    ops.check_clean()
    assert ops.peak_live <= 2 * streams  # one pinned input and output per stream


def test_copy_true_results_stay_valid_and_copy_false_ones_are_reused(fake):
    ops = fake(seed=5, max_delay=0.0005)
    batches = [np.full((3, 4), k, dtype=np.float64) for k in range(12)]
    kept = list(stream_map(affine, batches, streams=2))
    for k, result in enumerate(kept):
        np.testing.assert_array_equal(result, 2.0 * k + 1)
    bases = set()
    for result in stream_map(affine, batches, streams=2, copy=False):
        bases.add(id(_root(result)))
    assert len(bases) == 2  # the two pinned output buffers, in turn
    ops.check_clean()


def test_func_sees_its_streams_current_in_turn(fake):
    ops = fake(seed=6)
    seen = []

    def func(x):
        seen.append(ops.current_stream().name)
        return x + 0

    list(stream_map(func, [np.zeros(3)] * 7, streams=3))
    assert seen == [f"stream{i % 3}" for i in range(7)]


def test_tuple_batches_and_tuple_results(fake):
    ops = fake(seed=7)
    rng = np.random.default_rng(7)
    batches = [(rng.standard_normal((n, 3)).astype(np.float32), np.arange(n, dtype=np.int64))
               for n in (4, 0, 7, 1, 5)]  # fmt: skip

    def func(xy):
        x, y = xy
        return x.astype(np.float64) * 3, y + 10, (x[:, :1] > 0)

    results = list(stream_map(func, batches, streams=2))
    for (x, y), (a, b, c) in zip(batches, results, strict=True):
        np.testing.assert_array_equal(a, x.astype(np.float64) * 3)
        np.testing.assert_array_equal(b, y + 10)
        np.testing.assert_array_equal(c, x[:, :1] > 0)
        assert c.dtype == np.bool_
    ops.check_clean()


def test_shapes_that_grow_and_shrink_reuse_few_buffers(fake):
    ops = fake(seed=8)
    sizes = [1, 2, 50, 3, 400, 400, 2, 1000, 5, 1000, 1]
    batches = [np.arange(n, dtype=np.float64) for n in sizes]
    for batch, result in zip(batches, stream_map(affine, batches, streams=2), strict=True):
        np.testing.assert_array_equal(result, batch * 2 + 1)
    ops.check_clean()
    assert ops.peak_live <= 4
    assert ops.allocated < 2 * len(sizes)  # grown when needed, not made per batch


def test_empty_iterable_starts_and_stops_cleanly(fake):
    ops = fake()
    assert list(stream_map(affine, [])) == []
    assert list(to_device_batches(iter(()))) == []
    ops.check_clean()


def test_zero_size_and_zero_dimensional_batches(fake):
    ops = fake(seed=9)
    batches = [np.zeros((0, 5), np.float32), np.asarray(3.5), np.zeros(0, np.int8),
               np.float64(2.0), np.ones((2, 0, 3), np.complex64), np.arange(3.0)]  # fmt: skip
    results = list(stream_map(affine, batches, streams=2))
    for batch, result in zip(batches, results, strict=True):
        expected = np.asarray(batch) * 2 + 1
        assert result.shape == expected.shape
        assert result.dtype == expected.dtype
        np.testing.assert_array_equal(result, expected)
    ops.check_clean()


def test_non_contiguous_and_byte_swapped_batches_in_parallel_copies(fake, monkeypatch):
    monkeypatch.setattr(_stream, "PARALLEL_COPY_BYTES", 64)  # every copy split over threads
    ops = fake(seed=10)
    base = np.arange(600.0).reshape(20, 30)
    batches = [base.T, base[::2, ::3], base.astype(">f4"), base.astype(">i2")[:1],
               np.asfortranarray(base)]  # fmt: skip
    results = list(stream_map(lambda x: x - 1, batches, streams=2, copy_threads=3))
    for batch, result in zip(batches, results, strict=True):
        np.testing.assert_array_equal(result, np.asarray(batch) - 1)
        assert result.dtype.isnative
        assert result.flags.c_contiguous
    ops.check_clean()


def test_non_contiguous_func_results_are_copied_back_right(fake):
    ops = fake(seed=11)
    batches = [np.arange(12.0).reshape(3, 4), np.arange(30).reshape(5, 6)]
    results = list(stream_map(lambda x: x.T[::-1], batches))
    for batch, result in zip(batches, results, strict=True):
        np.testing.assert_array_equal(result, batch.T[::-1])
    ops.check_clean()


# ------------------------------------------------------------------- device results


@pytest.mark.parametrize("streams", [1, 3])
def test_to_device_batches_deliver_owned_arrays_in_order(fake, streams):
    ops = fake(seed=12)
    batches = random_batches(np.random.default_rng(12), 25)
    delivered = list(to_device_batches(batches, streams=streams))  # all held at once
    for batch, device in zip(batches, delivered, strict=True):
        assert isinstance(device, FakeDeviceArray)
        np.testing.assert_array_equal(device, batch)
    assert len({id(_root(d)) for d in delivered}) == len(batches)  # none reused
    ops.check_clean()


def test_device_results_order_each_launch_after_the_callers_stream(fake):
    ops = fake(seed=13)
    list(stream_map(lambda x: x * 2, [np.ones(4)] * 5, streams=2, to="device"))
    allocs = [k for k, (op, _) in enumerate(ops.log) if op == "alloc"]
    assert len(allocs) == 5
    for k in allocs:  # memory the caller dropped may be reused: wait for its stream first
        assert ops.log[k] == ("alloc", "caller")  # the batch belongs to the caller's stream
        assert ops.log[k - 2] == ("record", "caller")
        assert ops.log[k - 1][0] == "wait"
        assert ops.log[k - 1][1].startswith("stream")
    # and each result is handed over behind its stream's last operation
    assert sum(1 for entry in ops.log if entry == ("wait", "caller")) == 5


def test_to_device_batches_from_an_array_loader_with_reused_buffers(fake):
    ops = fake(seed=14)
    X = np.arange(90, dtype=np.float32).reshape(30, 3)
    y = np.arange(30)
    loader = ArrayLoader((X, y), 4, shuffle="full", seed=3, prefetch=1)  # copy=False views
    order = loader.indices()
    seen = []
    for Xd, yd in to_device_batches(loader, streams=2):
        np.testing.assert_array_equal(Xd, X[np.asarray(yd)])
        seen.append(np.asarray(yd).copy())
    np.testing.assert_array_equal(np.concatenate(seen), order)
    ops.check_clean()


# -------------------------------------------------------------- errors and closing


def test_func_error_comes_after_earlier_results_with_the_batch_index(fake):
    ops = fake(seed=15)

    def func(x):
        if x[0] == 5:
            raise ValueError("bad batch")
        return x + 0

    results = stream_map(func, (np.full(3, k) for k in range(20)), streams=3)
    got = [int(next(results)[0]) for _ in range(5)]
    assert got == [0, 1, 2, 3, 4]
    with pytest.raises(ValueError, match="bad batch") as info:
        next(results)
    assert any("batch 5" in note for note in getattr(info.value, "__notes__", ["batch 5"]))
    ops.check_clean()


def test_error_from_batches_itself_is_re_raised_with_the_index(fake):
    ops = fake(seed=16)

    def batches():
        yield np.ones(2)
        yield np.ones(2)
        raise OSError("disk gone")

    results = stream_map(affine, batches())
    assert next(results).tolist() == [3.0, 3.0]
    assert next(results).tolist() == [3.0, 3.0]
    with pytest.raises(OSError, match="disk gone") as info:
        next(results)
    assert any("batch 2" in note for note in getattr(info.value, "__notes__", ["batch 2"]))
    ops.check_clean()


@pytest.mark.parametrize(("item", "match"), [
    ([1, 2, 3], r"`batches` item 1 must be a NumPy array or a non-empty tuple of NumPy "
                r"arrays; got list \[1, 2, 3\]"),
    ((), r"`batches` item 1 must be .* non-empty tuple .*; got tuple \(\)"),
    ((np.ones(2), "x"), r"`batches` item 1\[1\] must be a NumPy array; got str 'x'"),
    (np.array([None]), r"`batches` item 1 has dtype object, which holds Python objects"),
])  # fmt: skip
def test_bad_batch_is_named_with_its_index(fake, item, match):
    ops = fake()
    results = stream_map(affine, [np.ones(2), item, np.ones(2)])
    assert next(results).tolist() == [3.0, 3.0]
    with pytest.raises(TypeError, match=match):
        next(results)
    ops.check_clean()


def test_func_returning_a_host_array_is_refused_with_the_batch_index(fake):
    ops = fake()
    with pytest.raises(TypeError, match=r"`func` must return a fake device array or a "
                                        r"non-empty tuple of them; for batch 0 it returned "
                                        r"numpy.ndarray"):  # fmt: skip
        list(stream_map(lambda x: np.asarray(x).copy(), [np.ones(2)]))
    ops.check_clean()


def test_max_bytes_bounds_the_pinned_memory(fake):
    ops = fake()
    batches = [np.zeros(1000, np.uint8)] * 3
    # 2 streams x (input + output) of 1000 bytes: exactly 4000 fits, unrounded
    assert len(list(stream_map(lambda x: x + 1, batches, streams=2, max_bytes=4000))) == 3
    ops.check_clean()
    results = stream_map(lambda x: x + 1, batches, streams=2, max_bytes=3999)
    with pytest.raises(ValueError, match=r"batch 1 needs 1000 bytes of pinned output buffer, "
                                         r"but `max_bytes`=3999 leaves 999"):  # fmt: skip
        list(results)
    ops.check_clean()


@pytest.mark.parametrize("how", ["close", "abandon"])
def test_early_close_stops_everything(fake, how):
    ops = fake(seed=17)
    fetched = []

    def batches():
        for k in range(1000):
            fetched.append(k)
            yield np.full(8, k, dtype=np.float64)

    results = stream_map(affine, batches(), streams=3)
    assert [int(next(results)[0]) for _ in range(3)] == [1, 3, 5]
    if how == "close":
        results.close()
    else:
        del results
        gc.collect()
    ops.check_clean()  # staging thread gone, streams drained, buffers released
    # 3 handed over, 2 more launched, one staged per slot, one fetched waiting for a slot
    assert len(fetched) <= 3 + 2 * 3


def test_nothing_starts_before_the_first_next(fake):
    ops = fake()
    results = stream_map(affine, [np.ones(2)])
    assert stage_threads() == []
    assert ops.streams == []
    results.close()
    assert ops.streams == []


# ----------------------------------------------------- the checks can fail


def test_poison_check_catches_an_input_refilled_before_its_copy(fake, monkeypatch):
    ops = fake(h2d_delay=0.02, d2h_delay=0.0)
    monkeypatch.setattr(_stream._Run, "_wait_input_free", lambda self, token: None)
    batches = [np.full(16, k, dtype=np.float64) for k in range(4)]
    results = [r.copy() for r in stream_map(affine, batches, streams=1)]
    wrong = any(not np.array_equal(r, b * 2 + 1) for r, b in zip(results, batches, strict=True))
    assert any("overwritten" in e for e in ops.errors)
    assert wrong


def test_poison_check_catches_a_result_read_before_its_copy(fake, monkeypatch):
    ops = fake(h2d_delay=0.0, d2h_delay=0.02)
    monkeypatch.setattr(_stream._Run, "_wait_result", lambda self, launched: None)
    batches = [np.full(16, k, dtype=np.float64) for k in range(4)]
    results = list(stream_map(affine, batches, streams=2))
    assert any(r.view(np.uint8)[0] == POISON for r in results)
    assert ops.errors == []  # the poison shows it, nothing else went wrong


# ------------------------------------------------------------ arguments


@pytest.mark.parametrize(("kwargs", "error", "match"), [
    ({"func": 3}, TypeError, r"`func` must be callable; got int 3"),
    ({"batches": 5}, TypeError, r"`batches` must be an iterable of NumPy arrays .*; got int: 5"),
    ({"batches": np.ones((4, 2))}, TypeError, r"`batches` must be an iterable of batches, "
                                              r"not one array \(shape \(4, 2\)\)"),
    ({"streams": 0}, ValueError, r"`streams` must be an integer >= 1; got 0"),
    ({"streams": True}, TypeError, r"`streams` must be an integer >= 1; got True"),
    ({"streams": 2.0}, TypeError, r"`streams` must be an integer >= 1; got 2.0"),
    ({"to": "gpu"}, ValueError, r"`to` must be one of \{'host', 'device'\}; got 'gpu'"),
    ({"copy": "yes"}, TypeError, r"`copy` must be True or False; got 'yes'"),
    ({"max_bytes": 0}, ValueError, r"`max_bytes` must be an integer >= 1; got 0"),
    ({"copy_threads": 0}, ValueError, r"`copy_threads` must be an integer >= 1; got 0"),
])  # fmt: skip
def test_bad_arguments_are_refused_at_the_call(kwargs, error, match):
    call = {"func": affine, "batches": [np.ones(2)], **kwargs}
    with pytest.raises(error, match=match):
        stream_map(call.pop("func"), call.pop("batches"), **call)
    assert stage_threads() == []


def test_to_device_batches_checks_its_arguments():
    with pytest.raises(ValueError, match=r"`streams` must be an integer >= 1; got -1"):
        to_device_batches([np.ones(2)], streams=-1)
    with pytest.raises(TypeError, match=r"`batches` must be an iterable"):
        to_device_batches(None)


# ----------------------------------------------- the real ops on this machine


def test_simulator_path_and_docstring_examples():
    if not simulated():
        pytest.skip("a real GPU is used here: tests/gpu/test_stream_cuda.py covers it")
    assert npaccel.cuda.stream_map is stream_map
    assert npaccel.cuda.to_device_batches is to_device_batches
    batches = random_batches(np.random.default_rng(18), 6)
    for batch, result in zip(batches, stream_map(affine, batches, copy=False), strict=True):
        np.testing.assert_array_equal(result, batch * 2 + 1)
    finder, runner = doctest.DocTestFinder(), doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    for test in finder.find(_stream):
        runner.run(test)
    assert runner.summarize(verbose=False).failed == 0
    assert stage_threads() == []


def test_without_a_gpu_the_first_next_says_what_is_missing(monkeypatch):
    if npaccel.cuda.available():
        pytest.skip("a GPU is usable here")
    from npaccel.backends import BackendError

    monkeypatch.setattr(npaccel.cuda._device, "simulated", lambda: False)
    results = stream_map(affine, [np.ones(2)])  # made: nothing checked yet
    with pytest.raises(BackendError, match=r"backend 'cuda' (needs CuPy|found no)"):
        next(results)
    assert stage_threads() == []
