"""Which files a run reads, and where each output goes — never outside the output dir.

Sources are directories (walked recursively, hidden entries skipped), glob patterns
(``photos/**/*.png``), list files (``@list.txt``: one path per line, ``#`` comments, paths
relative to the list file's directory) or single files. Each input remembers its path
relative to its source's root; the output mirrors that path under the output directory.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from npaccel.image._io import SUPPORTED_FORMATS, format_for_path

__all__ = ["InputFile", "discover_inputs", "output_path", "plan_outputs"]

_EXTENSIONS = frozenset(ext for exts in SUPPORTED_FORMATS.values() for ext in exts)
_CANONICAL = {"PNG": ".png", "JPEG": ".jpg", "TIFF": ".tif", "BMP": ".bmp", "WEBP": ".webp"}
_GLOB = frozenset("*?[")


@dataclass(frozen=True)
class InputFile:
    path: Path  # absolute path of the file to read
    relative: PurePosixPath  # its path below its source's root: what the output mirrors


def _is_image(name: str) -> bool:
    return not name.startswith(".") and os.path.splitext(name)[1].lower() in _EXTENSIONS


def _walk(root: Path, excluded: list[Path]) -> list[InputFile]:
    found = []
    for top, dirs, files in os.walk(root, followlinks=False):
        here = Path(top)
        dirs[:] = sorted(d for d in dirs if not d.startswith(".")
                         and not any(_inside(here / d, e) for e in excluded))  # fmt: skip
        for name in files:
            if _is_image(name):
                path = here / name
                found.append(InputFile(path, PurePosixPath(path.relative_to(root).as_posix())))
    return sorted(found, key=lambda f: f.relative)


def _inside(path: Path, directory: Path) -> bool:
    try:
        path.resolve().relative_to(directory)
    except ValueError:
        return False
    return True


def _glob_root(pattern: str) -> Path:
    parts = Path(pattern).parts
    lead = []
    for part in parts:
        if _GLOB & set(part):
            break
        lead.append(part)
    return Path(*lead) if lead else Path(".")


def _from_list(list_file: Path) -> list[InputFile]:
    if not list_file.is_file():
        raise FileNotFoundError(f"list file {str(list_file)!r} does not exist")
    base = list_file.parent.resolve()
    items = []
    lines = list_file.read_text(encoding="utf-8").splitlines()
    for number, line in enumerate(lines, 1):
        entry = line.strip()
        if not entry or entry.startswith("#"):
            continue
        path = Path(entry) if os.path.isabs(entry) else base / entry
        if not path.is_file():
            raise FileNotFoundError(
                f"{str(list_file)!r} line {number}: {entry!r} is not a file")
        # below the list's directory: mirrored; elsewhere: kept as written, and
        # plan_outputs rejects what would leave the output dir ('..', absolute)
        try:
            relative = PurePosixPath(path.resolve().relative_to(base).as_posix())
        except ValueError:
            relative = PurePosixPath(Path(entry).as_posix())
        items.append(InputFile(path.absolute(), relative))
    return items


def discover_inputs(sources: Sequence[str | os.PathLike],
                    *, exclude: Sequence[os.PathLike] = ()) -> list[InputFile]:  # fmt: skip
    """The image files of ``sources``, in order, each once (by resolved path); files inside
    any ``exclude`` directory are left out (the runner excludes its output dir)."""
    if isinstance(sources, str | os.PathLike):
        sources = [sources]
    excluded = [Path(e).resolve() for e in exclude]
    seen: set[Path] = set()
    result = []
    for source in sources:
        text = os.fspath(source)
        if text.startswith("@"):
            items = _from_list(Path(text[1:]))
        elif _GLOB & set(text):
            root = _glob_root(text).absolute()
            matches = sorted(glob.glob(text, recursive=True))
            items = [InputFile(Path(m).absolute(),
                               PurePosixPath(Path(m).absolute().relative_to(root).as_posix()))
                     for m in matches if os.path.isfile(m) and _is_image(Path(m).name)]  # fmt: skip
        elif os.path.isdir(text):
            items = _walk(Path(text).absolute(), excluded)
        elif os.path.isfile(text):
            path = Path(text).absolute()
            items = [InputFile(path, PurePosixPath(path.name))]
        else:
            raise FileNotFoundError(f"input {text!r} is not a file, directory, glob or @list")
        for item in items:
            real = item.path.resolve()
            if real in seen or any(_inside(item.path, e) for e in excluded):
                continue
            seen.add(real)
            result.append(item)
    return result


def output_path(item: InputFile, output_dir: str | os.PathLike, *,
                format: str | None = None) -> Path:  # fmt: skip
    """Where ``item``'s output goes: ``output_dir / item.relative``, its suffix changed to
    ``format``'s. ValueError if that would leave ``output_dir`` (absolute or '..' parts,
    or a symlink inside the output dir, at any level, pointing out of it)."""
    rel = item.relative
    if rel.is_absolute() or ".." in rel.parts or not rel.parts or "" in rel.parts:
        raise ValueError(f"input {str(item.path)!r}: its output path {str(rel)!r} would leave "
                         "the output directory (absolute or '..')")  # fmt: skip
    root = Path(output_dir).resolve()
    target = root.joinpath(*rel.parts)
    if format is not None:
        target = target.with_suffix(_CANONICAL[format_for_path(target, format)])
    real = Path(os.path.realpath(target))
    if (real != target and not _inside(real, root)) or not _inside(target.parent, root):
        raise ValueError(f"input {str(item.path)!r}: output {str(target)!r} resolves to "
                         f"{str(real)!r}, outside the output directory {str(root)!r} "
                         "(a symlink)")  # fmt: skip
    if os.path.islink(target):
        raise ValueError(f"input {str(item.path)!r}: output {str(target)!r} is a symlink; "
                         "outputs are never written through links")  # fmt: skip
    return target


def plan_outputs(items: Sequence[InputFile], output_dir: str | os.PathLike, *,
                 format: str | None = None):  # fmt: skip
    """([(input, output)], [(input, why rejected)]): escapes and collisions (two inputs
    with one output) are rejected, the first claimant of an output keeps it."""
    planned, rejected = [], []
    owner: dict[Path, InputFile] = {}
    for item in items:
        try:
            target = output_path(item, output_dir, format=format)
        except ValueError as exc:
            rejected.append((item, str(exc)))
            continue
        if target in owner:
            rejected.append((item, f"output {str(target)!r} is already the output of "
                                   f"{str(owner[target].path)!r}"))  # fmt: skip
            continue
        owner[target] = item
        planned.append((item, target))
    return planned, rejected
