"""Profiles: how big and how often. ``quick`` (the default) keeps a whole run under a
minute on a 2-core VM; ``full`` uses the sizes the docs quote."""

from __future__ import annotations

from dataclasses import dataclass, replace

from npaccel.bench._runner import Method

__all__ = ["PROFILES", "Profile"]


@dataclass(frozen=True)
class Profile:
    name: str
    method: Method
    stream_bytes: int  # minimum bytes per STREAM array (4x the LLC is enforced anyway)
    matrix_n: tuple[int, ...]  # GEMM, solve, inv edge
    fft_n: tuple[int, ...]
    einsum_n: tuple[int, ...]
    image_n: tuple[int, ...]  # filters: square images
    mc_samples: int
    memmap_bytes: int
    scaling: str  # "some": thread scaling of a representative set; "all": every case
    gpu_n: tuple[int, ...] = (4096,)  # GPU rows: square images and matrices
    rounds: int = 3  # samples are taken in this many rounds over the whole run

    def with_sizes(self, sizes: tuple[int, ...]) -> Profile:
        """``--sizes``: the edges of every square problem (matrices, FFTs, images)."""
        return replace(self, matrix_n=sizes, fft_n=sizes, image_n=sizes, gpu_n=sizes)


PROFILES = {
    "quick": Profile(
        name="quick",
        method=Method(warmups=1, samples=6, min_sample=0.03),
        stream_bytes=64 << 20,
        matrix_n=(1024,),
        fft_n=(1024,),
        einsum_n=(48,),
        image_n=(1024,),
        mc_samples=10_000_000,
        memmap_bytes=128 << 20,
        scaling="some",
    ),
    "full": Profile(
        name="full",
        method=Method(warmups=2, samples=9, min_sample=0.1),
        stream_bytes=256 << 20,
        matrix_n=(1024, 2048),
        fft_n=(1024, 2048),
        einsum_n=(64,),
        image_n=(2048, 4096),
        mc_samples=50_000_000,
        memmap_bytes=512 << 20,
        scaling="all",
        gpu_n=(8192,),
    ),
}
