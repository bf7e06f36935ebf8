"""Which files a run reads, and where each output goes: never outside the output directory.

A source is a directory (walked recursively), a glob pattern (``photos/**/*.png``), a list
file (``@list.txt``) or a single file. Each input remembers its path relative to its
source's root, and its output mirrors that path under the output directory.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from npaccel.image._io import SUPPORTED_FORMATS, format_for_path

__all__ = ["InputFile", "discover_inputs", "output_path", "plan_outputs"]

_EXTENSIONS = frozenset(ext for exts in SUPPORTED_FORMATS.values() for ext in exts)
_CANONICAL = {"PNG": ".png", "JPEG": ".jpg", "TIFF": ".tif", "BMP": ".bmp", "WEBP": ".webp"}
_GLOB_CHARS = frozenset("*?[")


@dataclass(frozen=True)
class InputFile:
    """One input: ``path``, the (absolute) file to read, and ``relative``, its path below
    its source's root, which the output mirrors."""

    path: Path
    relative: PurePosixPath


def discover_inputs(sources: Sequence[str | os.PathLike], *,
                    exclude: Sequence[str | os.PathLike] = ()) -> list[InputFile]:
    """The input files of ``sources``, each once.

    Parameters
    ----------
    sources : sequence of str or os.PathLike
        Each one of:

        - a directory: its image files (extensions of :data:`SUPPORTED_FORMATS`, any case)
          at any depth, relative to it. Names starting with '.' (hidden files and
          directories, npaccel's temp files) are skipped; symlinked directories are not
          entered (no loops), symlinked files are read.
        - a glob pattern (``*``, ``?`` or ``[``; ``**`` matches any depth): the image files
          it matches, relative to its leading directories without glob characters. A
          pattern that matches nothing raises FileNotFoundError. An existing path whose
          name contains those characters is taken literally.
        - ``@list.txt``: the files it lists, one per line; blank lines and lines starting
          with '#' are ignored; relative lines are relative to the list file's directory.
          Files under that directory are relative to it; a file outside it keeps its line
          as written ('../x.png', '/abs/x.png'), which :func:`output_path` refuses, so it
          is rejected, never written outside the output directory.
        - a file: that file, relative to its directory.

        Listed and single files are returned whatever their extension (reading them
        reports an unsupported one).
    exclude : sequence of str or os.PathLike, optional
        Directories whose files are never returned (the runner passes its output
        directory, so an output directory inside an input directory is not read back).

    Returns
    -------
    list of InputFile
        Sources in the order given, each sorted by relative path; a file found again
        (same resolved path) is left out, the first occurrence wins.

    Raises
    ------
    FileNotFoundError
        If a source, a list file or a listed file does not exist, naming it.
    """
    if isinstance(sources, str | os.PathLike):
        sources = [sources]
    excluded = [os.path.realpath(e) for e in exclude]
    seen: set[str] = set()
    found = []
    for source in sources:
        for item in _expand(os.fspath(source), excluded):
            real = os.path.realpath(item.path)
            if real not in seen and not _under_any(real, excluded):
                seen.add(real)
                found.append(item)
    return found


def _expand(source: str, excluded: list[str]) -> list[InputFile]:
    if source.startswith("@"):
        return _from_list(Path(source[1:]))
    if os.path.isdir(source):
        return _walk(Path(source).absolute(), excluded)
    if os.path.isfile(source):
        path = Path(source).absolute()
        return [InputFile(path, PurePosixPath(path.name))]
    if _GLOB_CHARS & set(source):
        return _glob(source)
    raise FileNotFoundError(f"input {source!r} does not exist (give a directory, a file, a glob "
                            "pattern or @list.txt)")


def _is_image(name: str) -> bool:
    return not name.startswith(".") and os.path.splitext(name)[1].lower() in _EXTENSIONS


def _under_any(real: str, directories: Iterable[str]) -> bool:
    return any(real == d or real.startswith(d.rstrip(os.sep) + os.sep) for d in directories)


def _walk(root: Path, excluded: list[str]) -> list[InputFile]:
    found = []
    for top, dirs, files in os.walk(root, followlinks=False):
        dirs[:] = [d for d in dirs if not d.startswith(".")
                   and not _under_any(os.path.realpath(os.path.join(top, d)), excluded)]
        here = Path(top)
        rel = PurePosixPath(here.relative_to(root).as_posix())
        found += [InputFile(here / name, rel / name) for name in files if _is_image(name)]
    return sorted(found, key=lambda item: item.relative)


def _glob_root(pattern: str) -> Path:
    lead = []
    for part in Path(pattern).parts[:-1]:
        if _GLOB_CHARS & set(part):
            break
        lead.append(part)
    return Path(*lead) if lead else Path()


def _glob(pattern: str) -> list[InputFile]:
    matches = glob.glob(pattern, recursive=True)
    if not matches:
        raise FileNotFoundError(f"input pattern {pattern!r} matches no files")
    root = _glob_root(pattern).absolute()
    found = []
    for match in matches:
        path = Path(match).absolute()
        if path.is_file() and _is_image(path.name):
            found.append(InputFile(path, PurePosixPath(path.relative_to(root).as_posix())))
    return sorted(found, key=lambda item: item.relative)


def _from_list(list_file: Path) -> list[InputFile]:
    if not list_file.is_file():
        raise FileNotFoundError(f"list file {str(list_file)!r} does not exist")
    base = Path(os.path.abspath(list_file.parent))
    found = []
    for number, line in enumerate(list_file.read_text(encoding="utf-8").splitlines(), 1):
        entry = line.strip()
        if not entry or entry.startswith("#"):
            continue
        path = Path(os.path.abspath(base / entry))  # '..' folded lexically
        if not path.is_file():
            raise FileNotFoundError(f"{str(list_file)!r} line {number}: {entry!r} is not a file "
                                    f"(relative lines are relative to {str(base)!r})")
        if path.is_relative_to(base):
            relative = PurePosixPath(path.relative_to(base).as_posix())
        else:  # cannot be mirrored: output_path rejects it
            relative = PurePosixPath(Path(entry).as_posix())
        found.append(InputFile(path, relative))
    return found


def output_path(item: InputFile, output_dir: str | os.PathLike, *,
                format: str | None = None) -> Path:
    """Where ``item``'s output goes: ``output_dir / item.relative``.

    Parameters
    ----------
    item : InputFile
    output_dir : str or os.PathLike
        Need not exist yet.
    format : {'png', 'jpeg', 'jpg', 'bmp', 'webp', 'tiff', 'tif'}, optional
        Replace the suffix by this format's extension (lower case: .png, .jpg, .bmp,
        .webp, .tif). Default: keep the input's.

    Returns
    -------
    pathlib.Path

    Raises
    ------
    ValueError
        If the output would leave ``output_dir``: ``item.relative`` is absolute, empty or
        has '..' parts, or symlinks already inside ``output_dir`` (a subdirectory, or the
        output file itself) lead out of it. Also for an unknown ``format``.
    """
    rel = item.relative
    if rel.is_absolute() or not rel.parts or ".." in rel.parts:
        raise ValueError(f"input {str(item.path)!r}: its relative path {str(rel)!r} would leave "
                         "the output directory (absolute, empty or '..'); a list file's "
                         "entries must lie under the list file's directory")
    target = Path(output_dir).joinpath(*rel.parts)
    if format is not None:
        target = target.with_suffix(_CANONICAL[format_for_path(target, format)])
    root = os.path.realpath(output_dir)
    real = os.path.realpath(target)
    if not real.startswith(root.rstrip(os.sep) + os.sep):
        raise ValueError(f"input {str(item.path)!r}: its output {str(target)!r} resolves to "
                         f"{real!r}, outside the output directory {root!r}, through a symlink; "
                         "remove the symlink")
    return target


def plan_outputs(items: Sequence[InputFile], output_dir: str | os.PathLike, *,
                 format: str | None = None,
                 ) -> tuple[list[tuple[InputFile, Path]], list[tuple[InputFile, str]]]:
    """Pair each input with its output, rejecting escapes and collisions.

    Parameters
    ----------
    items : sequence of InputFile
    output_dir : str or os.PathLike
    format : str, optional
        As for :func:`output_path`.

    Returns
    -------
    planned : list of (InputFile, pathlib.Path)
    rejected : list of (InputFile, str)
        Inputs whose output would leave ``output_dir`` (see :func:`output_path`) or would
        be another input's output (a.png and a.jpg with ``format='png'``): the first one
        keeps it, later ones are rejected with a reason naming the first.
    """
    if format is not None:
        format_for_path("", format)  # a bad format is an error, not a rejection per item
    planned: list[tuple[InputFile, Path]] = []
    rejected: list[tuple[InputFile, str]] = []
    owners: dict[str, InputFile] = {}
    for item in items:
        try:
            target = output_path(item, output_dir, format=format)
        except ValueError as exc:
            rejected.append((item, str(exc)))
            continue
        key = os.path.realpath(target)
        first = owners.setdefault(key, item)
        if first is not item:
            rejected.append((item, f"input {str(item.path)!r}: its output {str(target)!r} is "
                                   f"already the output of {str(first.path)!r}; rename one "
                                   "of them"))
            continue
        planned.append((item, target))
    return planned, rejected
