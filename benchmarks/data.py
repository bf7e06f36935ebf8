"""npaccel.data's three benchmarks in one run, one after the other (never side by side).

    python benchmarks/data.py                  # the issue's sizes: 4 GiB loader, stencil files
    python benchmarks/data.py --quick              # small sizes, to check that everything runs
    python benchmarks/data.py --path /scratch --json-dir results/

* benchmarks/data_loader.py: ArrayLoader (block and full shuffle) against a sequential
  read, naive memmap batches and torch's DataLoader, warm and cold;
* benchmarks/data_chunked.py: map_overlap of a 3x3 filter over a file 4x its memory budget,
  peak RSS and throughput against a plain read + write of the file;
* benchmarks/data_store.py: save/load ratio and GB/s for npy, npz, zarr codecs.

Each runs in its own process with its own options (run them directly for more control);
``--json-dir`` collects their JSON results.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent
FULL = {"data_loader.py": ["--gib", "4"], "data_chunked.py": ["--gib", "4", "--max-memory", "1GiB"],
        "data_store.py": ["--mb", "512"]}  # fmt: skip
QUICK = {"data_loader.py": ["--gib", "0.25", "--seconds", "10", "--repeats", "1"],
         "data_chunked.py": ["--gib", "0.25", "--max-memory", "64MiB", "--repeats", "1"],
         "data_store.py": ["--mb", "32", "--repeats", "1"]}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes")
    parser.add_argument("--path", help="directory for the data files (default: temp dirs)")
    parser.add_argument("--json-dir", type=Path, help="write each benchmark's JSON here")
    args = parser.parse_args()
    failed = []
    for script, options in (QUICK if args.quick else FULL).items():
        argv = [sys.executable, str(HERE / script), *options]
        if args.path:
            argv += ["--path", args.path]
        if args.json_dir:
            args.json_dir.mkdir(parents=True, exist_ok=True)
            argv += ["--json", str(args.json_dir / script.replace(".py", ".json"))]
        print(f"\n## {script} {' '.join(options)}", flush=True)
        if subprocess.run(argv).returncode != 0:
            failed.append(script)
    if failed:
        raise SystemExit(f"failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
