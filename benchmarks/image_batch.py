"""`npaccel image run` against hand-written loops and the IO roof, in one run.

    python benchmarks/image_batch.py                    # 400 PNG + 400 JPEG, 1024x768 RGB
    python benchmarks/image_batch.py --count 50 --json results.json

One 4-step pipeline (grayscale, Gaussian σ=2, Sobel gradient magnitude, astype uint8) over
the same generated corpus, written as PNG/JPEG like its input, through:

* npaccel: ``npaccel.image.run`` (thread pool, atomic writes, manifest);
* a sequential Pillow + scipy.ndimage loop, as people write it;
* the same loop with OpenCV (cv2.imread/cvtColor/GaussianBlur/Sobel/magnitude/imwrite);
* the IO roof: decode each input + encode its pipeline output (computed beforehand,
  untimed), with npaccel's codecs (Pillow decode; PNG by OpenCV when installed, as npaccel
  writes it; the same thread count as npaccel) — no pipeline producing these outputs could
  beat it with these codecs; and the same roof with Pillow's encoders only, for reference.

Reported: images/s of each, npaccel ÷ the OpenCV loop, npaccel ÷ the IO roof. The corpus is
made once (smooth gradients plus noise, so PNGs compress like photos rather than noise).
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage

from npaccel import image, threads

PIPELINE = "grayscale | gaussian sigma=2 | sobel | astype uint8"


def make_corpus(root: Path, count: int, width: int, height: int) -> list[Path]:
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    paths = []
    for i in range(count):
        phase = rng.uniform(0, 6.28, 3)
        base = np.stack([127 + 100 * np.sin(x / (40 + 7 * c) + y / (55 + 5 * c) + phase[c])
                         for c in range(3)], axis=-1)  # fmt: skip
        rgb = np.clip(base + rng.normal(0, 6, base.shape), 0, 255).astype(np.uint8)
        for ext in (".png", ".jpg"):
            path = root / f"img{i:04d}{ext}"
            Image.fromarray(rgb).save(path, **({"compress_level": 1} if ext == ".png" else {}))
            paths.append(path)
    return paths


def pillow_scipy_loop(paths: list[Path], out: Path) -> None:
    for path in paths:
        gray = np.asarray(Image.open(path).convert("L"), dtype=np.float32)
        smooth = ndimage.gaussian_filter(gray, 2)
        magnitude = np.hypot(ndimage.sobel(smooth, 0), ndimage.sobel(smooth, 1))
        result = np.clip(np.rint(magnitude), 0, 255).astype(np.uint8)
        Image.fromarray(result).save(out / path.name, **_save_options(path))


def opencv_loop(paths: list[Path], out: Path) -> None:
    import cv2

    for path in paths:
        gray = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2GRAY).astype(np.float32)
        smooth = cv2.GaussianBlur(gray, (0, 0), 2, borderType=cv2.BORDER_REFLECT)
        gx = cv2.Sobel(smooth, cv2.CV_32F, 1, 0, borderType=cv2.BORDER_REFLECT)
        gy = cv2.Sobel(smooth, cv2.CV_32F, 0, 1, borderType=cv2.BORDER_REFLECT)
        result = cv2.convertScaleAbs(cv2.magnitude(gx, gy))
        cv2.imwrite(str(out / path.name), result)


def io_roof(paths: list[Path], out: Path, workers: int, png: str,
            outputs: dict[Path, np.ndarray]) -> None:
    """Decode each input and encode its pipeline output (computed beforehand, untimed), and
    nothing else: the same bytes npaccel reads and writes, no compute, no fsync, no temp
    file. PNG written by ``png`` ('opencv': cv2.imencode's default, as npaccel does when
    OpenCV is installed; 'pillow': Pillow at zlib level 1), JPEG by Pillow."""

    def one(path: Path) -> None:
        with Image.open(path) as im:
            im.load()
        result = outputs[path]
        if path.suffix == ".png" and png == "opencv":
            import cv2

            (out / path.name).write_bytes(cv2.imencode(".png", result)[1].data)
        else:
            Image.fromarray(result).save(out / path.name, **_save_options(path))

    with cf.ThreadPoolExecutor(workers) as pool:
        list(pool.map(one, paths))


def pipeline_outputs(paths: list[Path]) -> dict[Path, np.ndarray]:
    pipeline = image.Pipeline.parse(PIPELINE)
    outputs = {}
    for path in paths:
        result = pipeline(image.read_image(path)[0])
        outputs[path] = result[..., 0] if result.ndim == 3 else result
    return outputs


def _save_options(path: Path) -> dict:
    return {"compress_level": 1} if path.suffix == ".png" else {}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=400, help="images per format")
    parser.add_argument("--width", type=int, default=1024)
    parser.add_argument("--height", type=int, default=768)
    parser.add_argument("--workers", type=int, default=threads.usable_cpus())
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="npaccel-image-bench-"))
    try:
        src = work / "in"
        src.mkdir()
        paths = make_corpus(src, args.count, args.width, args.height)
        os.sync()  # the corpus on disk: no writeback of it during the first timed run
        mb = sum(p.stat().st_size for p in paths) / 1e6
        n = len(paths)
        png = image.resolve_png_encoder("auto")
        outputs = pipeline_outputs(paths)
        runs = {
            "npaccel": lambda out: image.run([src], out, PIPELINE, workers=args.workers),
            "pillow+scipy loop": lambda out: pillow_scipy_loop(paths, out),
            "opencv loop": lambda out: opencv_loop(paths, out),
            "io roof (decode+encode)": lambda out: io_roof(paths, out, args.workers, png,
                                                           outputs),
            "io roof, pillow codecs": lambda out: io_roof(paths, out, args.workers, "pillow",
                                                          outputs),
        }
        results = {}
        for name, fn in runs.items():
            out = work / name.split()[0]
            out.mkdir()
            start = time.perf_counter()
            summary = fn(out)
            seconds = time.perf_counter() - start
            if summary is not None and summary.failed:
                raise SystemExit(f"npaccel failed: {summary.failures[:3]}")
            results[name] = {"seconds": seconds, "images_per_s": n / seconds}
            shutil.rmtree(out)
            os.sync()  # this run's writes flushed before the next run starts
        print(f"# {n} images ({args.count} PNG + {args.count} JPEG, {args.width}x{args.height} "
              f"RGB, {mb:.0f} MB), pipeline {PIPELINE!r}, {args.workers} workers, "
              f"PNG encoder {png}")
        for name, r in results.items():
            print(f"{name:<26} {r['seconds']:8.2f} s {r['images_per_s']:8.1f} images/s")
        ours = results["npaccel"]["images_per_s"]
        print(f"npaccel / opencv loop: {ours / results['opencv loop']['images_per_s']:.2f}x   "
              f"npaccel / io roof: {ours / results['io roof (decode+encode)']['images_per_s']:.0%}")
        if args.json:
            args.json.write_text(json.dumps({"pipeline": PIPELINE, "images": n, **results},
                                            indent=2))  # fmt: skip
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
