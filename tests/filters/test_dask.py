"""backend='dask': lazy filters of Dask arrays equal the single-array result."""

from __future__ import annotations

import itertools
import os
import signal
import threading
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from npaccel import filters as F
from npaccel.backends import BackendError

da = pytest.importorskip("dask.array")  # the `dask` extra; CI installs it
import dask  # noqa: E402

MODES = ("reflect", "mirror", "nearest", "constant", "wrap")
RNG = np.random.default_rng(0)
CASES = [
    ("uniform_filter", (3,), {}),
    ("uniform_filter", (4,), {"origin": 1}),
    ("uniform_filter1d", (5,), {"axis": 0, "origin": -2}),
    ("gaussian_filter", (1.5,), {}),
    ("gaussian_filter", ((1.0, 2.0),), {"order": (0, 1)}),
    ("gaussian_filter", (1.0,), {"radius": 5}),
    ("gaussian_filter1d", (2.0,), {"axis": 1, "truncate": 2.0}),
    ("gaussian_laplace", (1.2,), {}),
    ("gaussian_gradient_magnitude", (1.0,), {"truncate": 3.0}),
    ("sobel", (), {"axis": 0}),
    ("prewitt", (), {}),
    ("laplace", (), {}),
    ("gradient_magnitude", ("prewitt",), {}),
    ("correlate", (RNG.random((3, 4)),), {"origin": (0, 1)}),
    ("convolve", (RNG.random((4, 3)),), {"origin": (1, -1)}),
    ("correlate1d", ([1.0, 2.0, 3.0, 4.0],), {"axis": 0, "origin": 1}),
    ("convolve1d", ([1.0, -2.0, 3.0, 4.0],), {"axis": 1, "origin": -1}),
    ("median_filter", (3,), {}),
    ("minimum_filter", (), {"size": (3, 5), "origin": (1, 0)}),
    ("maximum_filter", (), {"footprint": np.eye(4, dtype=bool)}),
    ("rank_filter", (2,), {"size": 3}),
    ("percentile_filter", (30,), {"size": 4}),
    ("minimum_filter1d", (4,), {"axis": 1}),
    ("maximum_filter1d", (6,), {"axis": 0, "origin": 2}),
]
UNEVEN = ((7, 9, 7), (10, 11, 10))  # 23 × 31, chunks that don't divide it


@pytest.fixture(autouse=True)
def _threads_scheduler():
    with dask.config.set(scheduler="threads"):
        yield


@pytest.mark.parametrize("dtype", ["float32", "uint8"])
@pytest.mark.parametrize(("name", "args", "kwargs"), CASES, ids=[c[0] for c in CASES])
def test_every_filter_and_mode_equals_the_single_array_result(name, args, kwargs, dtype):
    x = (RNG.random((23, 31)) * 200).astype(dtype)
    lazy_input = da.from_array(x, chunks=UNEVEN)
    fn = getattr(F, name)
    for mode in MODES:
        want = fn(x, *args, mode=mode, cval=7.5, **kwargs)
        got = fn(lazy_input, *args, mode=mode, cval=7.5, **kwargs)
        assert isinstance(got, da.Array)
        assert got.dtype == want.dtype
        assert got.chunks == lazy_input.chunks
        np.testing.assert_array_equal(got.compute(), want, err_msg=f"{name} {mode}")


def test_axes_leave_the_other_axes_alone_and_unhaloed():
    x = RNG.random((5, 30, 26, 3)).astype(np.float32)
    lazy_input = da.from_array(x, chunks=(2, 11, 9, 3))
    for fn, args, mode in ((F.gaussian_filter, (1.5,), ("wrap", "mirror")),
                           (F.median_filter, (5,), "wrap"), (F.sobel, (1,), ("mirror", "wrap"))):
        got = fn(lazy_input, *args, axes=(1, 2), mode=mode)
        want = fn(x, *args, axes=(1, 2), mode=mode)
        np.testing.assert_array_equal(got.compute(), want)
    from npaccel.filters._dask import halo

    assert halo("gaussian_filter", 4, {"sigma": 1.5, "axes": (1, 2), "truncate": 4.0,
                                       "radius": None}) == {0: 0, 1: 6, 2: 6, 3: 0}  # fmt: skip


def test_the_result_is_lazy():
    computed = []

    def source(block):
        computed.append(threading.get_ident())
        return block

    x = da.from_array(RNG.random((20, 20)), chunks=10).map_blocks(source, meta=np.empty((0, 0)))
    assert computed == []
    result = F.uniform_filter(x, 3)
    assert computed == []  # building the graph computed nothing
    result.compute()
    assert computed


def test_a_filter_without_halo_is_a_map_blocks():
    x = da.from_array(RNG.random((20, 21)).astype(np.float32), chunks=(6, 8))
    got = F.uniform_filter(x, 1)
    assert not any("overlap" in str(name) for name in got.dask.layers)
    np.testing.assert_array_equal(got.compute(), F.uniform_filter(x.compute(), 1))
    assert any("overlap" in str(name) for name in F.uniform_filter(x, 3).dask.layers)


def test_chunks_thinner_than_the_halo_warn_and_stay_correct():
    x = RNG.random((60, 9)).astype(np.float32)
    lazy_input = da.from_array(x, chunks=(4, 9))
    with pytest.warns(UserWarning, match=r"chunks along axes \[0\] \(\[4\] at the thinnest\) "
                      r"are thinner than the filter's halo \(\[8\]\)"):  # fmt: skip
        got = F.gaussian_filter(lazy_input, 2, axes=0)
    np.testing.assert_array_equal(got.compute(), F.gaussian_filter(x, 2, axes=0))
    short = da.from_array(x[:5], chunks=(2, 3))  # shorter than the halo along both axes
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_array_equal(F.gaussian_filter(short, 3, mode="wrap").compute(),
                                      F.gaussian_filter(x[:5], 3, mode="wrap"))  # fmt: skip


def _chunking(n: int):
    """Chunk sizes that sum to ``n`` (uneven, some thinner than a halo)."""
    return st.lists(st.integers(1, n), min_size=1, max_size=4).map(
        lambda cuts: _split(n, sorted(set(c for c in cuts if c < n))))


def _split(n: int, cuts: list[int]) -> tuple[int, ...]:
    edges = [0, *cuts, n]
    return tuple(b - a for a, b in itertools.pairwise(edges))


@st.composite
def _chunked_cases(draw):
    shape = tuple(draw(st.lists(st.integers(1, 19), min_size=1, max_size=3)))
    chunks = tuple(draw(_chunking(n)) for n in shape)
    name, args, kwargs = draw(st.sampled_from([
        ("uniform_filter", (3,), {}), ("uniform_filter", (2,), {"origin": -1}),
        ("gaussian_filter", (1.0,), {}), ("median_filter", (3,), {}),
        ("maximum_filter", (4,), {"origin": 1}), ("sobel", (), {"axis": -1}),
        ("laplace", (), {})]))  # fmt: skip
    modes = tuple(draw(st.sampled_from(MODES)) for _ in shape)
    if name == "median_filter":  # scipy's rank filters take one mode for all axes
        modes = modes[0]
    return shape, chunks, name, args, {**kwargs, "mode": modes}


@settings(max_examples=60, deadline=None)
@given(_chunked_cases(), st.sampled_from(["float32", "int16"]))
def test_any_chunking_and_modes_per_axis_equal_the_single_array_result(case, dtype):
    shape, chunks, name, args, kwargs = case
    x = (np.random.default_rng(len(chunks)).random(shape) * 300 - 100).astype(dtype)
    fn = getattr(F, name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # thin chunks warn; the result must still be equal
        got = fn(da.from_array(x, chunks=chunks), *args, cval=3, **kwargs).compute()
    np.testing.assert_array_equal(got, fn(x, *args, cval=3, **kwargs))


def test_chunks_are_filtered_in_place_and_only_thin_strips_are_copied(monkeypatch):
    from npaccel.filters import _dask

    seen = []
    assemble = _dask._assemble

    def spy(have, axes, segments, offset=(), where=()):
        region = assemble(have, axes, segments, offset, where)
        if not offset:  # a whole region, not one of its recursive parts
            seen.append(region)
        return region

    monkeypatch.setattr(_dask, "_assemble", spy)
    x = RNG.random((60, 64)).astype(np.float32)
    got = F.gaussian_filter(da.from_array(x, chunks=(20, 32)), 1.0, mode="wrap")
    np.testing.assert_array_equal(got.compute(), F.gaussian_filter(x, 1.0, mode="wrap"))
    radius = 4
    assert seen  # every chunk has neighbours: one call for both strips along each axis
    assert all(min(s.shape) <= 6 * radius for s in seen), [s.shape for s in seen]


@pytest.mark.parametrize(("scheduler", "workers", "expected"), [("sync", None, 2),
                                                               ("threads", 2, 1)])  # fmt: skip
def test_each_chunk_runs_on_its_tasks_share_of_the_cpus(monkeypatch, scheduler, workers,
                                                       expected):  # fmt: skip
    import numba

    from npaccel import threads
    from npaccel.filters import _dask

    monkeypatch.setattr(threads, "usable_cpus", lambda *a: 2)
    monkeypatch.setattr(_dask, "_cpus_seen", (-_dask._CPUS_TTL, 1))  # read afresh
    seen = []
    filter_ = _dask._filter

    def spy(*args):
        seen.append(numba.get_num_threads())
        return filter_(*args)

    monkeypatch.setattr(_dask, "_filter", spy)
    x = RNG.random((40, 30)).astype(np.float32)
    with dask.config.set(scheduler=scheduler, num_workers=workers):
        got = F.uniform_filter(da.from_array(x, chunks=(20, 15)), 3).compute()
    np.testing.assert_array_equal(got, F.uniform_filter(x, 3))
    assert seen
    assert set(seen) == {expected}


def test_numpy_input_with_backend_dask_is_chunked_and_computed(monkeypatch):
    from npaccel.filters import _dask

    monkeypatch.setattr(_dask, "DEFAULT_CHUNK_BYTES", 1000)  # many chunks of a small array
    x = (RNG.random((300, 40)) * 255).astype(np.uint8)
    got = F.gaussian_filter(x, 1.5, backend="dask")
    assert isinstance(got, np.ndarray)
    np.testing.assert_array_equal(got, F.gaussian_filter(x, 1.5))
    out = np.empty(x.shape, np.float32)
    assert F.median_filter(x, 5, output=out, backend="dask") is out
    np.testing.assert_array_equal(out, F.median_filter(x, 5, output=np.float32))
    np.testing.assert_array_equal(F.sobel(x[:0], backend="dask"), F.sobel(x[:0]))
    inplace = x.astype(np.float32)
    want = F.uniform_filter(inplace, 7)
    assert F.uniform_filter(inplace, 7, output=inplace, backend="dask") is inplace
    np.testing.assert_array_equal(inplace, want)  # output=input: every halo read before written


def test_bad_combinations_are_named():
    x = da.zeros((8, 8), chunks=4)
    with pytest.raises(BackendError, match=r"`backend` 'cpu' takes NumPy arrays; a Dask array "
                       r"runs on backend 'dask'"):  # fmt: skip
        F.uniform_filter(x, 3, backend="cpu")
    with pytest.raises(TypeError, match=r"`output` must be None or a dtype for a Dask array"):
        F.uniform_filter(x, 3, output=np.zeros((8, 8)))
    with pytest.raises(ValueError, match=r"`mode` must be one of"):
        F.uniform_filter(x, 3, mode="symmetric")
    got = F.uniform_filter(x, 3, output="float32")
    assert got.dtype == np.float32


@pytest.mark.slow
def test_on_a_process_cluster_with_a_worker_killed_mid_computation():
    distributed = pytest.importorskip("distributed")
    x = RNG.random((512, 384)).astype(np.float32)
    want = F.gaussian_filter(x, 2, mode="mirror")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:  # fmt: skip
        lazy_input = da.from_array(x, chunks=(64, 96))
        np.testing.assert_array_equal(F.gaussian_filter(lazy_input, 2, mode="mirror")
                                      .compute(), want)  # fmt: skip
        pid = next(iter(client.run(os.getpid).values()))

        def slow(block):
            import time

            time.sleep(0.05)
            return block

        future = client.compute(F.gaussian_filter(lazy_input.map_blocks(slow), 2,
                                                  mode="mirror"))  # fmt: skip
        os.kill(pid, signal.SIGKILL)  # its chunks are recomputed elsewhere
        np.testing.assert_array_equal(future.result(), want)
