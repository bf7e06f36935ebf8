"""Host batches through the GPU with the copies hidden: :func:`stream_map` and
:func:`to_device_batches`.

A GPU that waits for ``cupy.asarray(batch)`` and ``result.get()`` spends its time on the bus.
This pipeline keeps the bus and the GPU busy at once:

* a staging thread takes the next host batch from ``batches`` and copies it into a **pinned**
  buffer (page-locked, so the copy engine reads it by DMA while the CPU does other work);
* the caller's thread queues, on one of ``streams`` CUDA streams, the host→device copy
  from that buffer, ``func`` and the device→host copy into a second pinned buffer, then
  records an event; batch ``i`` uses slot and stream ``i % streams``;
* results are handed over in input order once their event says the copy back is done.

A slot's pinned input is refilled only after the event recorded after its host→device copy
has completed, and its pinned output is read (and refilled) only after the event recorded
after its device→host copy; buffers are sized to the largest batch seen, grown when needed
(an old buffer is dropped only once its copies are done), and at most ``2 * streams`` are
held. The device operations sit behind a small interface (:mod:`._stream_ops`), so the
scheduling is tested without a GPU against a fake that runs copies late, on threads, and
poisons buffers used too early.
"""

from __future__ import annotations

import queue
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, NamedTuple

import numpy as np

__all__ = ["DESTINATIONS", "THREAD_PREFIX", "stream_map", "to_device_batches"]

DESTINATIONS = ("host", "device")
THREAD_PREFIX = "npaccel-stream"
ALIGN = 256  # byte alignment of each array packed into a buffer (device views start aligned)
MIN_BUFFER_BYTES = 4096
PARALLEL_COPY_BYTES = 4 << 20  # host copies at least this large are split over copy_threads
_JOIN_TIMEOUT_S = 30.0
_STOP = object()  # a token telling the staging thread to stop
_END = object()  # the staging thread's last item: `batches` is exhausted


# -------------------------------------------------------------------- validation


def _check_count(name: str, value: Any, minimum: int = 1) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"`{name}` must be an integer >= {minimum}; got {value!r}")
    if value < minimum:
        raise ValueError(f"`{name}` must be an integer >= {minimum}; got {value!r}")
    return int(value)


def _check_batches(batches: Any) -> Iterable[Any]:
    if isinstance(batches, np.ndarray):
        raise TypeError(f"`batches` must be an iterable of batches, not one array (shape "
                        f"{batches.shape}): give e.g. np.array_split(a, n) or [a]")  # fmt: skip
    if not isinstance(batches, Iterable):
        raise TypeError("`batches` must be an iterable of NumPy arrays (or of tuples of "
                        f"them); got {type(batches).__name__}: {batches!r}")  # fmt: skip
    return batches


def _check_options(streams: Any, to: Any, copy: Any, max_bytes: Any,
                   copy_threads: Any) -> tuple[int, str, bool, int | None, int]:  # fmt: skip
    streams = _check_count("streams", streams)
    if not isinstance(to, str) or to not in DESTINATIONS:
        raise ValueError(f"`to` must be one of {{'host', 'device'}}; got {to!r}")
    if not isinstance(copy, (bool, np.bool_)):
        raise TypeError(f"`copy` must be True or False; got {copy!r}")
    if max_bytes is not None:
        max_bytes = _check_count("max_bytes", max_bytes)
    if copy_threads is None:
        from npaccel.threads import usable_cpus

        copy_threads = min(4, usable_cpus())
    else:
        copy_threads = _check_count("copy_threads", copy_threads)
    return streams, to, bool(copy), max_bytes, copy_threads


def _describe(value: Any) -> str:
    kind = type(value)
    name = kind.__name__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__name__}"
    text = repr(value)
    return f"{name} {text[:60] + '...' if len(text) > 60 else text}"


def _host_arrays(batch: Any, i: int) -> tuple[tuple[np.ndarray, ...], bool]:
    """The arrays of host batch ``i`` and whether it was a single array (not a tuple)."""
    if isinstance(batch, np.generic):
        batch = np.asarray(batch)
    if isinstance(batch, np.ndarray):
        arrays, single = (batch,), True
    elif isinstance(batch, tuple) and batch:
        arrays, single = batch, False
    else:
        raise TypeError(f"`batches` item {i} must be a NumPy array or a non-empty tuple of "
                        f"NumPy arrays; got {_describe(batch)}")  # fmt: skip
    for j, array in enumerate(arrays):
        label = f"`batches` item {i}" if single else f"`batches` item {i}[{j}]"
        if not isinstance(array, np.ndarray):
            if type(array).__module__.split(".")[0] == "cupy":
                raise TypeError(
                    f"{label} is a CuPy array, already on the device; stream_map "
                    "moves host (NumPy) batches: call func on it directly"
                )
            raise TypeError(f"{label} must be a NumPy array; got {_describe(array)}")
        if array.dtype.hasobject:
            raise TypeError(f"{label} has dtype {array.dtype}, which holds Python objects; "
                            "give a numeric or fixed-size dtype")  # fmt: skip
    return tuple(arrays), single


# ------------------------------------------------------------------------ layout


class _Part(NamedTuple):
    """Where one array of a batch lives in a flat byte buffer."""

    shape: tuple[int, ...]
    dtype: np.dtype
    offset: int
    nbytes: int


def _layout(shapes_dtypes: Iterable[tuple[tuple[int, ...], np.dtype]]
            ) -> tuple[tuple[_Part, ...], int]:  # fmt: skip
    """Parts packed at ``ALIGN``-byte offsets (native byte order) and the bytes they span."""
    parts, offset, used = [], 0, 0
    for shape, dtype in shapes_dtypes:
        native = dtype if dtype.isnative else dtype.newbyteorder("=")
        nbytes = int(np.prod(shape, dtype=np.int64)) * native.itemsize
        parts.append(_Part(tuple(shape), native, offset, nbytes))
        used = offset + nbytes
        offset += -(-nbytes // ALIGN) * ALIGN
    return tuple(parts), used


def _view(buffer: Any, part: _Part) -> Any:
    """The typed array ``part`` describes, a view of the flat ``uint8`` ``buffer``."""
    return buffer[part.offset : part.offset + part.nbytes].view(part.dtype).reshape(part.shape)


def _capacity(nbytes: int) -> int:
    """``nbytes`` rounded up to 1/8 of its power of two (so few sizes recur, and CuPy's
    pinned pool, which reuses blocks of equal size, can hand them out again)."""
    nbytes = max(nbytes, MIN_BUFFER_BYTES)
    step = 1 << max(0, nbytes.bit_length() - 4)
    return -(-nbytes // step) * step


def _note(exc: BaseException, text: str) -> None:
    if hasattr(exc, "add_note"):  # Python >= 3.11
        exc.add_note(text)


# ------------------------------------------------------------------- host copies


class _Copier:
    """Host copies (pageable → pinned, pinned → result) split over a few threads when they
    are large: one core's memcpy is slower than a PCIe 5 link."""

    def __init__(self, threads: int) -> None:
        self.threads = threads
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    def copy(self, dst: np.ndarray, src: np.ndarray) -> None:
        """``dst[...] = src`` for a C-contiguous ``dst`` of ``src``'s shape."""
        if self.threads == 1 or dst.nbytes < PARALLEL_COPY_BYTES or dst.ndim == 0:
            np.copyto(dst, src)
            return
        if src.flags.c_contiguous and src.dtype == dst.dtype:
            d, s = dst.reshape(-1).view(np.uint8), src.reshape(-1).view(np.uint8)
        elif dst.shape[0] > 1:
            d, s = dst, src
        else:
            np.copyto(dst, src)
            return
        bounds = np.linspace(0, len(d), min(self.threads, len(d)) + 1).astype(np.int64)
        pieces = list(zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True))
        pool = self._executor()
        futures = [pool.submit(np.copyto, d[a:b], s[a:b]) for a, b in pieces[1:]]
        np.copyto(d[pieces[0][0] : pieces[0][1]], s[pieces[0][0] : pieces[0][1]])
        for future in futures:
            future.result()

    def _executor(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(
                    self.threads - 1, thread_name_prefix=f"{THREAD_PREFIX}-copy"
                )
            return self._pool

    def shutdown(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True)


# ------------------------------------------------------------------------- slots


class _Budget:
    """The pinned bytes held, against ``max_bytes``; grows buffers (thread-safe)."""

    def __init__(self, ops: Any, max_bytes: int | None) -> None:
        self.ops = ops
        self.max_bytes = max_bytes
        self.held = 0
        self._lock = threading.Lock()

    def fit(self, buffer: np.ndarray | None, need: int, what: str, i: int) -> np.ndarray:
        """``buffer`` if it holds ``need`` bytes, else a larger one (``buffer`` released:
        the caller guarantees that no copy uses it any more)."""
        if buffer is not None and buffer.nbytes >= need:
            return buffer
        old = 0 if buffer is None else buffer.nbytes
        capacity = _capacity(need)
        with self._lock:
            if self.max_bytes is not None and self.held - old + capacity > self.max_bytes:
                capacity = need  # no rounding up when the budget is tight
                if self.held - old + capacity > self.max_bytes:
                    raise ValueError(
                        f"batch {i} needs {need} bytes of pinned {what} buffer, but "
                        f"`max_bytes`={self.max_bytes} leaves {self.max_bytes - self.held + old} "
                        "for it: use smaller batches, fewer `streams` or a larger `max_bytes`"
                    )
            self.held += capacity - old
        if buffer is not None:
            self.ops.release(buffer)
        try:
            return self.ops.pinned(capacity)
        except BaseException:
            with self._lock:
                self.held -= capacity
            raise

    def release(self, buffer: np.ndarray | None) -> None:
        if buffer is not None:
            with self._lock:
                self.held -= buffer.nbytes
            self.ops.release(buffer)


class _Slot:
    """One of ``streams`` slots: a stream and its pinned input and output buffers."""

    __slots__ = ("pinned_in", "pinned_out", "stream")

    def __init__(self, stream: Any) -> None:
        self.stream = stream
        self.pinned_in: np.ndarray | None = None
        self.pinned_out: np.ndarray | None = None


class _Staged(NamedTuple):
    """Batch ``index``, copied into its slot's pinned input."""

    index: int
    parts: tuple[_Part, ...]
    used: int
    single: bool


class _Failure(NamedTuple):
    index: int
    error: BaseException


class _Launched(NamedTuple):
    """Batch ``index``, queued on its slot's stream; ``done`` follows its last operation."""

    index: int
    slot: _Slot
    done: Any
    single: bool
    parts: tuple[_Part, ...] = ()  # to='host': the results in the pinned output
    device: tuple[Any, ...] = ()  # to='device': the results


# ---------------------------------------------------------------------- pipeline


class _Run:
    """The state of one pass, shared by the caller's thread and the staging thread.

    The staging thread takes one token from ``free_inputs`` per batch: the event recorded
    after the host→device copy of batch ``i - streams`` (``None`` for the first ones), so
    slot ``i % streams`` is refilled only once that copy has completed. The caller's thread
    puts that event when it queues the copy. ``_STOP`` in the queue means stop.
    """

    def __init__(self, ops: Any, func: Callable[[Any], Any] | None, batches: Iterable[Any],
                 streams: int, to: str, copy: bool, max_bytes: int | None,
                 copy_threads: int) -> None:  # fmt: skip
        self.ops = ops
        self.func = func
        self.batches = batches
        self.streams = streams
        self.to = to
        self.copy = copy
        self.budget = _Budget(ops, max_bytes)
        self.copier = _Copier(copy_threads)
        self.slots: list[_Slot] = []
        self.free_inputs: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.staged: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.stopped = False
        self.thread: threading.Thread | None = None

    # ---- lifecycle

    def start(self) -> None:
        self.slots = [_Slot(self.ops.new_stream()) for _ in range(self.streams)]
        for _ in range(self.streams):
            self.free_inputs.put(None)
        self.thread = threading.Thread(target=self._stage_loop, daemon=True,
                                       name=f"{THREAD_PREFIX}-stage")  # fmt: skip
        self.thread.start()

    def stop_staging(self) -> None:
        self.stopped = True
        self.free_inputs.put(_STOP)

    def close(self) -> None:
        """Stop the staging thread, wait for every queued operation, drop the buffers."""
        self.stop_staging()
        if self.thread is not None and self.thread is not threading.current_thread():
            self.thread.join(_JOIN_TIMEOUT_S)
        staging_done = self.thread is None or not self.thread.is_alive()
        for slot in self.slots:
            self.ops.synchronize_stream(slot.stream)
        for slot in self.slots:
            if staging_done:  # else the thread, stuck in `batches`, still owns it
                self.budget.release(slot.pinned_in)
                slot.pinned_in = None
            self.budget.release(slot.pinned_out)
            slot.pinned_out = None
        self.copier.shutdown()

    # ---- staging thread

    def _wait_input_free(self, token: Any) -> None:
        if token is not None:
            self.ops.synchronize(token)

    def _stage_loop(self) -> None:
        i = 0
        try:
            with self.ops.activate():
                iterator = iter(self.batches)
                while not self.stopped:
                    try:
                        batch = next(iterator)
                    except StopIteration:
                        self.staged.put(_END)
                        return
                    except Exception as exc:
                        _note(exc, f"(raised by `batches` while npaccel.cuda.stream_map "
                                   f"fetched batch {i})")  # fmt: skip
                        raise
                    arrays, single = _host_arrays(batch, i)
                    token = self.free_inputs.get()
                    if token is _STOP or self.stopped:
                        return
                    self._wait_input_free(token)
                    parts, used = _layout((a.shape, a.dtype) for a in arrays)
                    slot = self.slots[i % self.streams]
                    slot.pinned_in = self.budget.fit(slot.pinned_in, used, "input", i)
                    for array, part in zip(arrays, parts, strict=True):
                        self.copier.copy(_view(slot.pinned_in, part), array)
                    del batch, arrays  # the caller may reuse its buffer now
                    self.staged.put(_Staged(i, parts, used, single))
                    i += 1
        except BaseException as exc:  # handed to the caller's thread, which re-raises it
            self.staged.put(_Failure(i, exc))

    # ---- caller's thread

    def launch(self, item: _Staged) -> _Launched:
        """Queue batch ``item.index``: copy in, ``func``, copy out, on its slot's stream."""
        ops, i = self.ops, item.index
        slot = self.slots[i % self.streams]
        stream = slot.stream
        consumer = ops.current_stream() if self.to == "device" else None
        assert slot.pinned_in is not None
        with ops.on(stream):
            if self.to == "device":
                # Device memory the caller dropped may be reused below: first let the
                # caller's queued work, which may still read it, finish. The batch itself
                # is allocated on the caller's stream, whose pool it returns to when the
                # caller drops it (after the caller's own work on it, in stream order).
                ops.wait_event(stream, ops.record(consumer))
            device = ops.device_empty(item.used, consumer if self.to == "device" else stream)
            ops.h2d(device[: item.used], slot.pinned_in[: item.used], stream)
            self.free_inputs.put(ops.record(stream))  # the slot's input may be refilled after
            views = tuple(_view(device, part) for part in item.parts)
            argument = views[0] if item.single else views
            if self.func is None:
                result: Any = argument
            else:
                try:
                    result = ops.call(self.func, argument, stream)
                except Exception as exc:
                    note = f"(raised by `func` on batch {i} of npaccel.cuda.stream_map)"
                    _note(exc, note)
                    raise
            outputs, single = self._device_results(result, i)
            if self.to == "device":
                return _Launched(i, slot, ops.record(stream), single, device=outputs)
            outputs = tuple(ops.contiguous(out) for out in outputs)
            parts, used = _layout((out.shape, out.dtype) for out in outputs)
            # batch i - streams, the slot's last, was handed over and the caller moved on
            slot.pinned_out = self.budget.fit(slot.pinned_out, used, "output", i)
            for out, part in zip(outputs, parts, strict=True):
                ops.d2h(slot.pinned_out[part.offset : part.offset + part.nbytes], out, stream)
            return _Launched(i, slot, ops.record(stream), single, parts=parts)

    def _device_results(self, result: Any, i: int) -> tuple[tuple[Any, ...], bool]:
        values, single = ((result,), True) if not isinstance(result, tuple) else (result, False)
        arrays = tuple(self.ops.as_device_array(v) for v in values)
        if not values or any(a is None for a in arrays):
            raise TypeError(
                f"`func` must return {self.ops.device_kind} or a non-empty tuple "
                f"of them; for batch {i} it returned {_describe(result)}"
            )
        return arrays, single

    def _wait_result(self, launched: _Launched) -> None:
        self.ops.synchronize(launched.done)

    def finish(self, launched: _Launched) -> Any:
        """The results of a launched batch, for the caller (waits for them on the host, or,
        for device results, makes the caller's current stream wait)."""
        if self.to == "device":
            self.ops.wait_event(self.ops.current_stream(), launched.done)
            values = launched.device
        else:
            self._wait_result(launched)
            buffer = launched.slot.pinned_out
            values = tuple(_view(buffer, part) for part in launched.parts)
            if self.copy:
                values = tuple(self._copied(v) for v in values)
        return values[0] if launched.single else values

    def _copied(self, view: np.ndarray) -> np.ndarray:
        out = np.empty(view.shape, view.dtype)
        self.copier.copy(out, view)
        return out


def _pipeline(run: _Run) -> Iterator[Any]:
    """Results in input order. Launching comes first: as long as fewer than ``streams``
    batches are in flight, wait for the next staged one; otherwise hand over the oldest.
    After an error, the batches before it are still handed over, then it is raised."""
    in_flight: deque[_Launched] = deque()
    error: BaseException | None = None
    exhausted = False
    try:
        run.start()
        while True:
            if error is None and not exhausted and len(in_flight) < run.streams:
                item = run.staged.get()
                if item is _END:
                    exhausted = True
                elif isinstance(item, _Failure):
                    error = item.error
                    run.stop_staging()
                else:
                    try:
                        in_flight.append(run.launch(item))
                    except Exception as exc:
                        error = exc
                        run.stop_staging()
                continue
            if not in_flight:
                break
            yield run.finish(in_flight.popleft())
        if error is not None:
            raise error
    finally:
        run.close()


def _default_ops() -> Any:
    """Host stand-ins under numba-cuda's simulator, CuPy otherwise (or a BackendError that
    says how to install it)."""
    from npaccel.cuda import _stream_ops
    from npaccel.cuda._device import require_cupy, simulated

    if simulated():
        return _stream_ops.HostOps()
    return _stream_ops.CupyOps(require_cupy())


# ------------------------------------------------------------------------ public


def stream_map(func: Callable[[Any], Any], batches: Iterable[Any], *, streams: int = 3,
               to: str = "host", copy: bool = True, max_bytes: int | None = None,
               copy_threads: int | None = None) -> Iterator[Any]:  # fmt: skip
    """Apply ``func`` on the GPU to each host batch, with copies and compute overlapped.

    Parameters
    ----------
    func : callable
        Called as ``func(x)`` with batch ``i`` on the device: a CuPy array for a NumPy
        array batch, a tuple of CuPy arrays for a tuple batch. It must queue its work on
        the current stream (CuPy and npaccel's cuda kernels do) and return a CuPy array
        or a non-empty tuple of them (any shapes and dtypes). It runs in the caller's
        thread, with one of the pipeline's streams current.
    batches : iterable
        NumPy arrays, or tuples of NumPy arrays (e.g. ``(X, y)`` from
        :class:`npaccel.data.ArrayLoader`); shapes and dtypes may change from batch to
        batch. It is iterated in a background thread, one batch ahead of the copies; a
        batch is copied into pinned memory before the next one is asked for, so batches
        that are reused buffers (a loader with ``copy=False``) are fine.
    streams : int, optional
        CUDA streams, >= 1 (default 3): batches in flight at once, each with a pinned
        input and a pinned output buffer. 1 serialises copies and compute; 2 overlaps
        them; 3 leaves slack for the host's own latency.
    to : {'host', 'device'}, optional
        ``'host'`` (default): yield NumPy arrays, copied back through pinned buffers.
        ``'device'``: yield the CuPy results without copying them back.
    copy : bool, optional
        ``to='host'`` only. ``True`` (default): each result is a new NumPy array that the
        caller owns. ``False``: each result is a view of a pinned output buffer that is
        refilled after the next ``next()``: no host copy, the fastest; keep it longer with
        ``.copy()``.
    max_bytes : int, optional
        Most pinned bytes to hold (inputs and outputs of all slots); a batch that would
        need more raises ``ValueError``. Default: no limit (buffers fit the largest batch).
    copy_threads : int, optional
        Threads for host copies of at least 4 MiB (into pinned memory, and out of it with
        ``copy=True``), >= 1. Default: ``min(4, usable CPUs)``.

    Returns
    -------
    iterator
        One result per batch, in input order: the structure ``func`` returned, as NumPy
        arrays (``to='host'``) or CuPy arrays (``to='device'``).

    Raises
    ------
    TypeError
        ``func`` not callable, ``batches`` not an iterable (or a single array), an
        argument of the wrong type; when iterating, a batch that is not a NumPy array or a
        tuple of them, or ``func`` returning something other than device arrays (the
        message gives the batch index).
    ValueError
        An argument out of range; when iterating, a batch larger than ``max_bytes`` allows.
    npaccel.backends.BackendError
        When iterating starts: no CuPy or no GPU (under numba-cuda's simulator the
        pipeline runs on the host instead, with NumPy arrays as device arrays).

    See Also
    --------
    to_device_batches : the same pipeline without ``func``, delivering device batches.

    Notes
    -----
    **Order and errors.** Results come in input order. An exception raised by ``func``
    or by ``batches`` is re-raised by ``next()`` after the results of the batches before
    it, with a note naming the batch index (Python >= 3.11).

    **Buffers.** Host batches are copied into pinned buffers by the staging thread, never
    passed to ``cupy.asarray`` (which stages through a pinned buffer of its own). A
    slot's pinned input is refilled only after its host→device copy completed (an
    event), and its pinned output is read only after its device→host copy completed.
    With ``copy=False`` result ``i`` is valid until the following ``next()``.

    **Device results** (``to='device'``) are new arrays the caller owns. The stream that
    is current when one is yielded is made to wait for it (no host wait), so use it on
    that stream, or synchronise before using it on another.

    **Lifetime.** Nothing starts until the first ``next()``. The staging thread stops,
    and the streams are synchronised and the buffers dropped, when the iterator is
    exhausted, closed (``.close()``, ``contextlib.closing``) or garbage-collected.

    Examples
    --------
    >>> import numpy as np
    >>> from npaccel.cuda import stream_map
    >>> batches = [np.arange(6.0).reshape(2, 3), np.ones(4)]
    >>> [r.tolist() for r in stream_map(lambda x: x * 2, batches)]
    [[[0.0, 2.0, 4.0], [6.0, 8.0, 10.0]], [2.0, 2.0, 2.0, 2.0]]
    """
    if not callable(func):
        raise TypeError(f"`func` must be callable; got {_describe(func)}")
    batches = _check_batches(batches)
    options = _check_options(streams, to, copy, max_bytes, copy_threads)
    return _generate(func, batches, *options)


def to_device_batches(batches: Iterable[Any], *, streams: int = 3,
                      max_bytes: int | None = None,
                      copy_threads: int | None = None) -> Iterator[Any]:  # fmt: skip
    """Host batches delivered on the GPU through pinned buffers and overlapped copies.

    The pipeline of :func:`stream_map` without ``func``: each NumPy array (or tuple of
    arrays, e.g. ``(X, y)`` from :class:`npaccel.data.ArrayLoader`) arrives as a new
    CuPy array (or tuple of them) that the caller owns, in input order, ready for work on
    the stream that is current when it is yielded (that stream is made to wait for the
    copy; the host does not wait).

    Parameters
    ----------
    batches : iterable
        NumPy arrays or tuples of NumPy arrays (see :func:`stream_map`).
    streams, max_bytes, copy_threads
        As for :func:`stream_map`: copies in flight (pinned input buffers), the pinned
        byte limit, and host copy threads.

    Returns
    -------
    iterator
        CuPy arrays (NumPy arrays under numba-cuda's simulator), in input order.

    Raises
    ------
    TypeError, ValueError, npaccel.backends.BackendError
        As for :func:`stream_map`.

    Examples
    --------
    >>> import numpy as np
    >>> from npaccel.cuda import to_device_batches
    >>> [x.shape for x in to_device_batches([np.zeros((2, 3)), np.zeros(5)])]
    [(2, 3), (5,)]
    """
    batches = _check_batches(batches)
    options = _check_options(streams, "device", True, max_bytes, copy_threads)
    return _generate(None, batches, *options)


def _generate(func: Callable[[Any], Any] | None, batches: Iterable[Any], streams: int,
              to: str, copy: bool, max_bytes: int | None,
              copy_threads: int) -> Iterator[Any]:  # fmt: skip
    """The generator, with the ops chosen (and CuPy imported) at the first ``next()``."""
    run = _Run(_default_ops(), func, batches, streams, to, copy, max_bytes, copy_threads)
    yield from _pipeline(run)
