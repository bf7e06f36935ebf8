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


def main() -> None:
    from npaccel.threads import usable_cpus

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=usable_cpus())
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        exe = build(workdir)
        c_gbs, numba_gbs, numpy_gbs = [], [], []
        for _ in range(args.rounds):
            rows = npaccel_triad(args.threads, workdir)
            n = rows["numba"]["params"]["n"]
            env = os.environ | {"OMP_NUM_THREADS": str(args.threads), "OMP_PROC_BIND": "false"}
            c = json.loads(subprocess.run([str(exe), str(n), "21"], env=env, check=True,
                                          capture_output=True, text=True).stdout)  # fmt: skip
            c_gbs.append(c["gbs_median"])
            numba_gbs.append(rows["numba"]["gbs"])
            numpy_gbs.append(rows["numpy"]["gbs"])
            print(
                f"round: C {c['gbs_median']:.2f} GB/s   npaccel numba {rows['numba']['gbs']:.2f}"
                f"   numpy {rows['numpy']['gbs']:.2f}   (n={n}, {args.threads} threads)"
            )
    c, nb, np_ = (statistics.median(x) for x in (c_gbs, numba_gbs, numpy_gbs))
    print(
        f"median over {args.rounds} rounds: C {c:.2f} GB/s, npaccel numba {nb:.2f} GB/s "
        f"({nb / c:.0%} of C), numpy {np_:.2f} GB/s ({np_ / c:.0%} of C)"
    )


if __name__ == "__main__":
    main()
