"""Hold `npaccel bench`'s GEMM figure against a plain ``a @ b`` timed separately.

Alternates ROUNDS times between ``npaccel bench --only linalg.gemm`` and a separate
process timing ``a @ b`` with ``timeit`` (best practice: several repeats, per-call median),
same size, dtype and threads, and prints both medians and their ratio. The issue's
target: within 5%.

    uv run python benchmarks/gemm_check.py [--rounds 3] [--n 1024]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

PLAIN = """
import json, sys, timeit
import numpy as np
from threadpoolctl import threadpool_limits
n, dtype, threads = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
rng = np.random.default_rng(1)
a = rng.standard_normal((n, n)).astype(dtype)
b = rng.standard_normal((n, n)).astype(dtype)
with threadpool_limits(threads):
    a @ b
    number = max(1, int(0.1 / min(timeit.repeat(lambda: a @ b, number=1, repeat=3))))
    times = [t / number for t in timeit.repeat(lambda: a @ b, number=number, repeat=9)]
print(json.dumps({"median": sorted(times)[len(times) // 2]}))
"""


def main() -> None:
    from npaccel.threads import usable_cpus

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--n", type=int, default=1024)
    parser.add_argument("--threads", type=int, default=usable_cpus())
    args = parser.parse_args()
    ratios: dict[str, list[float]] = {"float32": [], "float64": []}
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "bench.json"
        for _ in range(args.rounds):
            subprocess.run(
                [sys.executable, "-m", "npaccel", "bench", "--only", "linalg.gemm", "--skip",
                 "stream", "--sizes", str(args.n), "--threads", str(args.threads),
                 "--no-progress", "--json", str(out)],
                check=True, stdout=subprocess.DEVNULL,
            )  # fmt: skip
            doc = json.loads(out.read_text())
            for dtype in ratios:
                rec = next(
                    r for r in doc["results"]
                    if r["kernel"] == "linalg.gemm" and r["params"]["dtype"] == dtype
                    and r["threads"] == args.threads
                )  # fmt: skip
                plain = json.loads(subprocess.run(
                    [sys.executable, "-c", PLAIN, str(args.n), dtype, str(args.threads)],
                    check=True, capture_output=True, text=True).stdout)["median"]  # fmt: skip
                bench = rec["timing"]["median"]
                ratios[dtype].append(bench / plain)
                print(
                    f"{dtype}: bench {bench * 1e3:.2f} ms, plain a @ b {plain * 1e3:.2f} ms, "
                    f"ratio {bench / plain:.3f}"
                )
    for dtype, values in ratios.items():
        print(
            f"{dtype}: median ratio bench/plain over {args.rounds} rounds "
            f"{statistics.median(values):.3f}"
        )


if __name__ == "__main__":
    main()
