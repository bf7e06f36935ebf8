"""The suite on tiny cases (statuses, rates, selection, thread counts, cost), and the real
kernels' self-checks: each must pass on its own result and catch a wrong one."""

from __future__ import annotations

import gc
import json

import numpy as np
import pytest

from npaccel.bench import Case, CheckFailed
from npaccel.bench._cost import instance_prices, resolve_price
from npaccel.bench._kernels import compute, filters, llc_bytes, memory, scaleout, storage
from npaccel.bench._suite import PEAK_KERNELS, select, thread_counts

from ._helpers import (
    FACTS,
    TINY_METHOD,
    make_case,
    peak_cases,
    result,
    tiny_profile,
    tiny_run,
)

# --------------------------------------------------------------------------- statuses


def test_wrong_answer_is_reported_without_timing(bench_doc):
    rec = result(bench_doc, "toy.wrong")
    assert rec["status"] == "wrong"
    assert rec["timing"] is None
    assert "toy.wrong result differs from the reference" in rec["error"]
    assert rec["gflops"] is None
    assert rec["roof_fraction"] is None


def test_setup_error_is_reported_with_its_type(bench_doc):
    rec = result(bench_doc, "toy.error")
    assert rec["status"] == "error"
    assert rec["error"] == "RuntimeError: no data"
    assert rec["timing"] is None


def test_missing_module_is_skipped(bench_doc):
    rec = result(bench_doc, "toy.skipped")
    assert rec["status"] == "skipped"
    assert rec["error"] == "needs module_that_does_not_exist (not installed)"
    assert rec["timing"] is None


def test_missing_dotted_module_is_skipped():
    # a later row may need a submodule (e.g. "cupyx.scipy"); its parent missing is the
    # same "not installed", not a crash of the whole run
    doc = tiny_run([make_case("toy.sub", requires=("package_that_does_not_exist.sub",))])
    assert result(doc, "toy.sub")["status"] == "skipped"


def test_kernel_failing_while_timed_is_an_error():
    calls = []

    def setup():
        def run():
            calls.append(1)
            if len(calls) > 1:
                raise FloatingPointError("overflow on the second call")
            return 0

        return run, lambda result: None

    case = Case("toy.flaky", "numpy", {"n": 1}, 1.0, 8.0, setup)
    doc = tiny_run([case, make_case("toy.after")])
    rec = result(doc, "toy.flaky")
    assert rec["status"] == "error"
    assert rec["error"] == "FloatingPointError: overflow on the second call"
    assert rec["timing"] is None
    assert rec["roof_fraction"] is None
    assert result(doc, "toy.after")["status"] == "ok"  # the run goes on


def test_wrong_kernel_is_never_timed():
    calls = []

    def setup():
        def check(result):
            raise CheckFailed("always wrong")

        return (lambda: calls.append("run")), check

    doc = tiny_run([Case("toy.wrong", "numpy", {"n": 1}, 1.0, 8.0, setup)])
    assert calls == ["run"]  # run once for the check, then left alone
    rec = result(doc, "toy.wrong")
    assert (rec["status"], rec["error"], rec["timing"]) == ("wrong", "always wrong", None)


def test_ok_results_have_timing_and_consistent_rates(bench_doc):
    ok = [r for r in bench_doc["results"] if r["status"] == "ok"]
    assert {r["kernel"] for r in ok} == {*PEAK_KERNELS, "toy.add", "toy.noroof"}
    for rec in ok:
        t = rec["timing"]
        assert len(t["samples"]) == TINY_METHOD.samples
        assert t["median"] == pytest.approx(float(np.median(t["samples"])))
        assert t["min"] == min(t["samples"])
        assert t["q1"] <= t["median"] <= t["q3"]
        assert t["iqr"] == pytest.approx(t["q3"] - t["q1"])
        assert t["loops"] >= 1
        assert t["warmup"] > 0
        assert all(s > 0 for s in t["samples"])
        assert rec["gflops"] == pytest.approx(rec["flops"] / t["median"] / 1e9)
        assert rec["gbs"] == pytest.approx(rec["bytes"] / t["median"] / 1e9)
        assert rec["error"] is None
        assert rec["threads"] == 1
        assert rec["role"] == ("peak" if rec["kernel"] in PEAK_KERNELS else "kernel")
        assert rec["in_cache"] == (rec["roof"] == "memory")  # tiny: all within 32 MiB
    toy = result(bench_doc, "toy.add")
    assert toy["throughput"] == pytest.approx(1024 / toy["timing"]["median"])
    assert toy["roof_fraction"] > 0
    assert result(bench_doc, "toy.noroof")["roof_fraction"] is None


def test_peaks_come_from_the_run(bench_doc):
    peaks = bench_doc["peaks"]
    assert peaks["threads"] == 1
    triads = {r["id"]: r["bytes"] / r["timing"]["median"] for r in bench_doc["results"]
              if r["kernel"] == "stream.triad"}  # fmt: skip
    assert peaks["bandwidth"]["from"] == max(triads, key=triads.get)
    assert peaks["bandwidth"]["bytes_per_s"] == pytest.approx(max(triads.values()))
    assert set(peaks["flops"]) == {"float32", "float64"}
    for dtype, peak in peaks["flops"].items():
        assert f"dtype={dtype}" in peak["from"]
    # the best triad is at the bandwidth roof by construction
    best = next(r for r in bench_doc["results"] if r["id"] == peaks["bandwidth"]["from"])
    assert best["roof_fraction"] >= 1 - 1e-12


def test_document_header(bench_doc):
    assert bench_doc["profile"] == "quick"
    assert bench_doc["threads"] == {"main": 1, "scaling": [1], "usable_cpus":
                                    bench_doc["threads"]["usable_cpus"]}  # fmt: skip
    assert bench_doc["facts"] == FACTS
    assert bench_doc["method"]["samples"] == TINY_METHOD.samples
    assert bench_doc["method"]["statistic"] == "median"
    assert bench_doc["price"] is None
    assert bench_doc["scaling"] == []
    assert "numpy" in bench_doc["versions"]
    json.dumps(bench_doc, allow_nan=False)  # JSON-ready as it is


def test_progress_is_reported():
    seen = []
    cases = [make_case("toy.a"), make_case("toy.b")]
    tiny_run(cases, progress=lambda name, i, n: seen.append((name, i, n)))
    total = len(peak_cases()) + 2
    checks = [s for s in seen if s[0].startswith("checking ")]
    assert [i for _, i, _ in checks] == list(range(total))
    assert {n for _, _, n in checks} == {total}
    assert [name for name, _, _ in checks[-2:]] == [f"checking {c.name}" for c in cases]
    timing = [s for s in seen if s[0].startswith("round ")]
    assert len(timing) == tiny_profile().rounds * total  # every slot in every round
    assert {n for _, _, n in timing} == {len(timing)}
    assert [i for _, i, _ in timing] == list(range(len(timing)))
    assert seen[-1] == ("done", seen[-1][2], seen[-1][2])
    assert seen.index(checks[-1]) < seen.index(timing[0])  # every check before any timing


def test_scaling_at_requested_thread_counts():
    doc = tiny_run([make_case("toy.scaled"), make_case("toy.fixed", scalable=False)],
                   threads=[1, 2])  # fmt: skip
    assert doc["threads"]["main"] == 2
    assert doc["threads"]["scaling"] == [1, 2]
    scaled = [r for r in doc["results"] if r["kernel"] == "toy.scaled"]
    assert [(r["threads"], r["role"]) for r in scaled] == [(2, "kernel"), (1, "scaling")]
    assert [r["threads"] for r in doc["results"] if r["kernel"] == "toy.fixed"] == [2]
    assert "toy.scaled[numpy,dtype=float64,n=1024]" in {s["case"] for s in doc["scaling"]}
    assert doc["peaks"]["threads"] == 2


# --------------------------------------------------------------------------- thread counts


def test_thread_counts():
    assert thread_counts(1) == [1]
    assert thread_counts(2) == [1, 2]
    assert thread_counts(3) == [1, 2, 3]
    assert thread_counts(8) == list(range(1, 9))
    assert thread_counts(12) == [*range(1, 9), 12]
    assert thread_counts(16) == [*range(1, 9), 16]
    assert thread_counts(100) == [*range(1, 9), 16, 32, 64, 100]


@pytest.mark.parametrize("usable", [1, 2, 5, 9, 16, 24, 64, 96, 257])
def test_thread_counts_properties(usable):
    counts = thread_counts(usable)
    assert counts == sorted(set(counts))
    assert counts[0] == 1
    assert counts[-1] == usable
    assert set(range(1, min(usable, 8) + 1)) <= set(counts)
    assert {1 << k for k in range(usable.bit_length())} <= set(counts)


# --------------------------------------------------------------------------- select

CASES = [
    *peak_cases(),
    make_case("stream.copy", "numpy"),
    make_case("stream.copy", "numba"),
    make_case("filters.box3", "npaccel", dtype="float32"),
    make_case("filters.box3", "cv2", dtype="uint8"),
    make_case("filters.median3", "scipy", dtype="uint8"),
    make_case("fft.fft2", "scipy", dtype="complex128"),
    make_case("linalg.gemm", "other"),  # not a peak case: backend not numpy/numba
]


def names(cases: list[Case]) -> set[str]:
    return {c.name for c in cases}


PEAK_NAMES = names(peak_cases())


@pytest.mark.parametrize(
    ("kwargs", "extra"),
    [
        ({}, {c.name for c in CASES[4:]}),
        ({"only": ["stream"]}, {"stream.copy[numpy,dtype=float64,n=1024]",
                                "stream.copy[numba,dtype=float64,n=1024]"}),
        ({"only": ["filters.box3"]}, {"filters.box3[npaccel,dtype=float32,n=1024]",
                                      "filters.box3[cv2,dtype=uint8,n=1024]"}),
        ({"only": ["filters.*"], "skip": ["*cv2*"]},
         {"filters.box3[npaccel,dtype=float32,n=1024]",
          "filters.median3[scipy,dtype=uint8,n=1024]"}),
        ({"only": ["*dtype=uint8*"]}, {"filters.box3[cv2,dtype=uint8,n=1024]",
                                       "filters.median3[scipy,dtype=uint8,n=1024]"}),
        ({"only": ["fft", "stream.copy"], "backends": ["scipy"]},
         {"fft.fft2[scipy,dtype=complex128,n=1024]"}),
        ({"skip": ["filters", "fft", "stream.copy", "*other*"]}, set()),
        ({"backends": ["cv2"]}, {"filters.box3[cv2,dtype=uint8,n=1024]"}),
        ({"backends": ["scipy"], "skip": ["fft*"]}, {"filters.median3[scipy,dtype=uint8,n=1024]"}),
        ({"only": ["nothing-matches"]}, set()),
        ({"only": ["linalg.gemm"]}, {"linalg.gemm[other,dtype=float64,n=1024]"}),
    ],
)  # fmt: skip
def test_select_keeps_peak_cases_whatever_only_and_backends(kwargs, extra):
    chosen = select(CASES, **kwargs)
    assert names(chosen) == PEAK_NAMES | extra
    order = [c.name for c in CASES]
    assert [c.name for c in chosen] == sorted(names(chosen), key=order.index)  # order kept


@pytest.mark.parametrize(
    ("skip", "dropped"),
    [
        (["stream"], {"stream.triad[numpy,dtype=float64,n=1024]",
                      "stream.triad[numba,dtype=float64,n=1024]"}),
        (["linalg.gemm"], {"linalg.gemm[numpy,dtype=float64,n=64]",
                           "linalg.gemm[numpy,dtype=float32,n=64]"}),
        (["*float32*"], {"linalg.gemm[numpy,dtype=float32,n=64]"}),
    ],
)  # fmt: skip
def test_select_skip_removes_even_peak_cases(skip, dropped):
    # only and backends never remove the roof; an explicit --skip does
    chosen = names(select(CASES, skip=skip, backends=["cv2"]))
    assert chosen & PEAK_NAMES == PEAK_NAMES - dropped
    assert not chosen & dropped


def test_run_applies_the_selection():
    doc = tiny_run([make_case("toy.kept"), make_case("toy.dropped")], only=["toy.kept"])
    kernels = [r["kernel"] for r in doc["results"]]
    assert "toy.kept" in kernels
    assert "toy.dropped" not in kernels
    assert set(PEAK_KERNELS) <= set(kernels)


# --------------------------------------------------------------------------- price


def test_price_per_hour_gives_costs():
    doc = tiny_run([make_case("toy.add", work=(1024.0, "items"))], price_per_hour=3.6)
    assert doc["price"] == {"per_hour": 3.6, "instance": None, "source": "given"}
    for rec in doc["results"]:
        median, cost = rec["timing"]["median"], rec["cost"]
        assert cost["usd_per_call"] == pytest.approx(median / 1000)
        assert cost["usd_per_tflop"] == pytest.approx(cost["usd_per_call"] / (rec["flops"] / 1e12))
        assert cost["usd_per_tb"] == pytest.approx(cost["usd_per_call"] / (rec["bytes"] / 1e12))
    toy = result(doc, "toy.add")
    assert toy["cost"]["usd_per_million_units"] == pytest.approx(
        toy["cost"]["usd_per_call"] / (1024 / 1e6)
    )


def test_untimed_records_cost_nothing():
    doc = tiny_run([make_case("toy.wrong", wrong=True)], price_per_hour=1.0)
    assert result(doc, "toy.wrong")["cost"] is None


def test_instance_price():
    doc = tiny_run([], instance="c7i.large")
    assert doc["price"] == {"per_hour": instance_prices()["c7i.large"], "instance": "c7i.large",
                            "source": "packaged table"}  # fmt: skip


def test_unknown_instance_fails_before_anything_runs():
    ran = []
    case = make_case("toy.add", on_setup=lambda: ran.append("setup"))
    with pytest.raises(ValueError, match="`instance` must be one of") as excinfo:
        tiny_run([case], instance="nope", progress=lambda *args: ran.append("progress"))
    message = str(excinfo.value)
    assert "'nope'" in message
    for name in instance_prices():
        assert name in message
    assert ran == []


@pytest.mark.parametrize("price", [0, -1.0, float("nan"), float("inf")])
def test_bad_price_per_hour(price):
    with pytest.raises(ValueError, match="`price_per_hour` must be a finite number > 0"):
        tiny_run([], price_per_hour=price)


def test_packaged_instance_table():
    prices = instance_prices()
    assert len(prices) >= 5
    assert all(isinstance(p, float) and p > 0 for p in prices.values())
    assert not any(name.startswith("_") for name in prices)


@pytest.mark.parametrize("bad", [-1, 0, "cheap", None, [1.0]])
def test_custom_price_table_with_a_bad_price(tmp_path, bad):
    path = tmp_path / "prices.json"
    path.write_text(json.dumps({"good.large": 1.5, "bad.large": bad}))
    with pytest.raises(ValueError, match=r"price of 'bad.large' in .*prices\.json must be"):
        instance_prices(path)


def test_custom_price_table(tmp_path):
    path = tmp_path / "prices.json"
    path.write_text(json.dumps({"_note": "mine", "box": 2.0}))
    assert instance_prices(path) == {"box": 2.0}
    price = resolve_price(None, "box", path)
    assert price == {"per_hour": 2.0, "instance": "box", "source": str(path)}
    doc = tiny_run([], instance="box", prices=str(path))
    assert doc["price"]["per_hour"] == 2.0
    with pytest.raises(ValueError, match=r"must be one of \{box\}; got 'c7i.large'"):
        resolve_price(None, "c7i.large", path)


# --------------------------------------------------------------------------- real kernels


def scaled(factor):
    return lambda r: np.asarray(r) * factor


def plus(delta):
    return lambda r: np.asarray(r) + np.asarray(delta).astype(np.asarray(r).dtype)


def transposed(r):
    return np.asarray(r).T.copy()


REAL = [
    ("stream-triad-numpy", lambda: memory._stream("triad", "numpy", 1 << 16), scaled(1.01)),
    ("stream-copy-numba", lambda: memory._stream("copy", "numba", 1 << 16), plus(1.0)),
    ("stream-scale-numpy", lambda: memory._stream("scale", "numpy", 1 << 16), scaled(1.01)),
    ("stream-add-numba", lambda: memory._stream("add", "numba", 1 << 16), scaled(0.99)),
    ("reduce-sum-numba", lambda: memory._reduction("sum", "numba", 1 << 16), scaled(1.01)),
    ("reduce-max-numpy", lambda: memory._reduction("max", "numpy", 1 << 16), plus(0.01)),
    ("reduce-max-numba", lambda: memory._reduction("max", "numba", 1 << 16), scaled(0.99)),
    ("elementwise-numba", lambda: memory._elementwise("numba", 1 << 16), scaled(1.01)),
    ("elementwise-numpy", lambda: memory._elementwise("numpy", 1 << 16), plus(1e-9)),
    ("gemm-f64-scaled", lambda: compute._gemm(64, "float64"), scaled(1.01)),
    ("gemm-f64-transposed", lambda: compute._gemm(64, "float64"), transposed),
    ("gemm-f32", lambda: compute._gemm(64, "float32"), transposed),
    ("fft2-numpy", lambda: compute._fft2(32, "numpy"), scaled(1.01)),
    ("fft2-scipy", lambda: compute._fft2(32, "scipy"), transposed),
    ("solve", lambda: compute._solve(32), scaled(1.01)),
    ("inv", lambda: compute._inv(32), scaled(1.01)),
    ("inv-transposed", lambda: compute._inv(32), transposed),
    ("einsum-optimized", lambda: compute._einsum(8, True), scaled(1.01)),
    ("einsum-loop", lambda: compute._einsum(8, False), transposed),
    ("montecarlo", lambda: compute._monte_carlo(1 << 16), plus(0.1)),
    ("box3-npaccel-f32", lambda: filters._case("box3", "npaccel", 32, "float32"), plus(1)),
    ("gaussian2-scipy-f32", lambda: filters._case("gaussian2", "scipy", 32, "float32"),
     scaled(1.01)),
    ("median3-npaccel-u8", lambda: filters._case("median3", "npaccel", 32, "uint8"), plus(3)),
    ("gaussian2-scipy-u8", lambda: filters._case("gaussian2", "scipy", 32, "uint8"), plus(5)),
    ("box3-cv2-u8", lambda: filters._case("box3", "cv2", 32, "uint8"), plus(3)),
    ("median5-cv2-f32", lambda: filters._case("median5", "cv2", 32, "float32"), scaled(1.01)),
    ("dask-tasks-threads", lambda: scaleout._tasks_case("threads", 20), lambda r: [*r[1:], 0]),
    ("dask-chunk-threads", lambda: scaleout._chunk_case("threads", 64), scaled(1.001)),
    ("dask-chunk-kernel", lambda: scaleout._chunk_case("kernel", 64), plus(1e-3)),
    ("dask-files-threads", lambda: scaleout._files_case("threads", 3, 24, None), scaled(1.01)),
    ("dask-files-loop", lambda: scaleout._files_case("loop", 3, 24, None), plus(1.0)),
]  # fmt: skip


@pytest.mark.parametrize(("factory", "perturb"), [r[1:] for r in REAL], ids=[r[0] for r in REAL])
def test_real_kernel_self_check(factory, perturb):
    case = factory()
    if "cv2" in case.requires:
        pytest.importorskip("cv2")
    run, check = case.setup()
    good = run()
    check(good)
    check(run())  # a second call (as timing makes) gives the same answer
    with pytest.raises(CheckFailed):
        check(perturb(good))


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_real_max_check_is_exact(backend):
    # a maximum is one of the elements, exactly: the check passes rtol=0 to ask for that,
    # but np.isclose's default atol=1e-8 still lets a maximum off by 1e-9 through
    run, check = memory._reduction("max", backend, 1 << 16).setup()
    exact = float(run())
    check(exact)
    with pytest.raises(CheckFailed):
        check(exact + 1e-9)


def test_real_gemm_check_catches_a_wrong_shape():
    # a result with too few rows is a wrong answer ("wrong"), not a crash of the check
    # (which the suite would record as "error: IndexError")
    run, check = compute._gemm(16, "float64").setup()
    with pytest.raises(CheckFailed, match="shape"):
        check(np.asarray(run())[:8])


def test_real_case_declarations():
    gemm = compute._gemm(64, "float64")
    assert (gemm.flops, gemm.bytes) == (2.0 * 64**3, 3 * 64 * 64 * 8)
    triad = memory._stream("triad", "numpy", 1 << 16)
    assert (triad.flops, triad.bytes) == (2 * (1 << 16), 24 * (1 << 16))
    assert triad.name == "stream.triad[numpy,dtype=float64,n=65536]"
    assert filters._case("box3", "cv2", 32, "uint8").requires == ("cv2",)
    assert compute._monte_carlo(1000).roof == "none"


def test_dask_file_stream_writes_every_output_whole(tmp_path):
    pytest.importorskip("dask")
    run, check = scaleout._files_case("threads", 4, 20, str(tmp_path)).setup()
    sums = run()
    check(sums)
    (scratch,) = tmp_path.iterdir()
    outputs = sorted(p.name for p in scratch.iterdir() if p.name.startswith("out-"))
    assert outputs == [f"out-{i:04d}.npy" for i in range(4)]
    assert not [p for p in scratch.iterdir() if p.suffix == ".part"]  # no temporaries left
    np.save(scratch / "out-0002.npy", np.zeros((3, 3), np.float32))  # a wrong output file
    with pytest.raises(CheckFailed, match="20x20"):
        check(sums)


def test_llc_bytes():
    assert llc_bytes({}) == 32 << 20
    caches = [
        {"level": 1, "type": "Data", "size_bytes": 32 << 10, "instances": 8},
        {"level": 1, "type": "Instruction", "size_bytes": 32 << 10, "instances": 8},
        {"level": 2, "type": "Unified", "size_bytes": 1 << 20, "instances": 8},
        {"level": 3, "type": "Unified", "size_bytes": 16 << 20, "instances": 2},
    ]
    assert llc_bytes({"cpu": {"caches": caches}}) == 32 << 20
    assert llc_bytes({"cpu": {"caches": caches[:3]}}) == 8 << 20


@pytest.mark.parametrize("pattern", ["sequential", "random", "random_madvise"])
def test_memmap_case_checks_and_cleans_up(tmp_path, pattern):
    case = storage._case(pattern, 1 << 20, str(tmp_path))
    assert case.params["bytes"] == 1 << 20
    run, check = case.setup()
    [scratch] = tmp_path.iterdir()
    assert scratch.name.startswith("npaccel-bench-")
    assert (scratch / "data.bin").stat().st_size == 1 << 20
    good = np.asarray(run()).copy()
    check(good)
    check(run())
    bad = good.copy()
    bad.flat[len(bad.flat) // 2] += 1
    with pytest.raises(CheckFailed):
        check(bad)
    del run, check
    gc.collect()
    assert list(tmp_path.iterdir()) == []
