"""Hold `npaccel bench`'s STREAM triad against a C OpenMP triad on the same machine.

Builds benchmarks/stream_triad.c (gcc -O3 -march=native -fopenmp), then alternates
ROUNDS times between the C binary and ``npaccel bench --only stream.triad`` at the same
thread count and array size, so both see the same machine state, and prints the medians
and their ratio. The issue's target: npaccel's triad within 15% of C's.

    uv run python benchmarks/stream_check.py [--rounds 3] [--threads N]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent


def build(workdir: Path) -> Path:
    cc = shutil.which(os.environ.get("CC", "gcc"))
    if cc is None:
        sys.exit("ERROR: no C compiler (set CC or install gcc)")
    exe = workdir / "stream_triad"
    cmd = [cc, "-O3", "-march=native", "-fopenmp", str(HERE / "stream_triad.c"), "-o", str(exe)]
    subprocess.run(cmd, check=True)
    return exe


def npaccel_triad(threads: int, workdir: Path) -> dict:
    out = workdir / "bench.json"
    subprocess.run(
        [sys.executable, "-m", "npaccel", "bench", "--only", "stream.triad", "--skip",
         "linalg.gemm", "--threads", str(threads), "--no-progress", "--json", str(out)],
        check=True, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    doc = json.loads(out.read_text())
    rows = [r for r in doc["results"] if r["kernel"] == "stream.triad" and r["status"] == "ok"
            and r["threads"] == threads]  # fmt: skip
    return {r["backend"]: r for r in rows}


def stream_elements() -> int:
    """The array length npaccel bench uses here (4x the last-level cache or more)."""
    from npaccel.bench._kernels import llc_bytes
    from npaccel.bench._kernels.memory import stream_elements as elements
    from npaccel.bench._profile import PROFILES
    from npaccel.doctor import collect_facts

    return elements(PROFILES["quick"], llc_bytes(collect_facts()))


def main() -> None:
    from npaccel.threads import usable_cpus

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--threads", type=int, default=usable_cpus())
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        exe = build(workdir)
        c_gbs, numba_gbs, numpy_gbs = [], [], []
        env = os.environ | {"OMP_NUM_THREADS": str(args.threads), "OMP_PROC_BIND": "false"}

        def c_triad(n: int) -> float:
            done = subprocess.run([str(exe), str(n), "21"], env=env, check=True,
                                  capture_output=True, text=True)  # fmt: skip
            return json.loads(done.stdout)["gbs_median"]

        for _ in range(args.rounds):
            # C before and after npaccel: this machine's bandwidth drifts within seconds
            before = c_triad(stream_elements())
            rows = npaccel_triad(args.threads, workdir)
            c = (before + c_triad(rows["numba"]["params"]["n"])) / 2
            c_gbs.append(c)
            numba_gbs.append(rows["numba"]["gbs"])
            numpy_gbs.append(rows["numpy"]["gbs"])
            print(f"round: C {c:.2f} GB/s (mean of before and after)   npaccel numba "
                  f"{rows['numba']['gbs']:.2f}   numpy {rows['numpy']['gbs']:.2f}   "
                  f"({args.threads} threads)")  # fmt: skip
    c, nb, np_ = (statistics.median(x) for x in (c_gbs, numba_gbs, numpy_gbs))
    ratio = statistics.median(x / y for x, y in zip(numba_gbs, c_gbs, strict=True))
    print(f"median over {args.rounds} rounds: C {c:.2f} GB/s, npaccel numba {nb:.2f} GB/s, "
          f"numpy {np_:.2f} GB/s; median same-round ratio numba/C {ratio:.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
