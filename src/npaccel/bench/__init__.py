"""``npaccel bench``: kernels across backends and thread counts, held against this
machine's own limits measured in the same run.

>>> from npaccel import bench
>>> doc = bench.run("quick", only=["stream"])          # doctest: +SKIP
>>> bench.compare(bench.load("a.json"), bench.load("b.json"))  # doctest: +SKIP

The method (warm-up, calibrated loops, median of samples), the roofline and the comparison
test are described in docs/bench.md and in the private modules' docstrings.
"""

from npaccel.bench._case import Case, CheckFailed
from npaccel.bench._compare import Change, compare, fact_differences
from npaccel.bench._profile import PROFILES, Profile
from npaccel.bench._runner import Method, Timing, measure
from npaccel.bench._schema import SCHEMA, dump, load, validate
from npaccel.bench._suite import run

__all__ = [
    "PROFILES",
    "SCHEMA",
    "Case",
    "Change",
    "CheckFailed",
    "Method",
    "Profile",
    "Timing",
    "compare",
    "dump",
    "fact_differences",
    "load",
    "measure",
    "run",
    "validate",
]
