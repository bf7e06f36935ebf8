"""npaccel.image._paths: which files a run reads and where each output goes, on real trees
(nested, hidden, symlinked) in tmp_path."""

from __future__ import annotations

import os
import re
from pathlib import Path, PurePosixPath

import pytest

from npaccel.image._paths import InputFile, discover_inputs, output_path, plan_outputs


def touch(root: Path, *names: str) -> None:
    for name in names:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")  # discovery never reads the files


def rels(items: list[InputFile]) -> list[str]:
    return [str(item.relative) for item in items]


@pytest.fixture
def tree(tmp_path):
    root = tmp_path / "photos"
    touch(root, "b.png", "a.jpg", "C.PNG", "d.JpEg", "e.tif", "f.TIFF", "g.bmp", "h.webp",
          "README.txt", "notes.png.txt", ".hidden.png", ".npaccel-tmp-1.part",
          ".npaccel-tmp-2.png", "sub/x.png", "sub/deeper/y.tiff", ".cache/z.png",
          "sub/.git/w.png")
    return root


# ------------------------------------------------------------------------ directories


def test_a_directory_gives_its_images_at_any_depth_sorted(tree):
    items = discover_inputs([tree])
    assert rels(items) == ["C.PNG", "a.jpg", "b.png", "d.JpEg", "e.tif", "f.TIFF", "g.bmp",
                           "h.webp", "sub/deeper/y.tiff", "sub/x.png"]
    assert all(item.path.is_absolute() for item in items)
    assert all(item.path == tree / item.relative for item in items)


def test_a_relative_directory_gives_absolute_paths(tree, monkeypatch):
    monkeypatch.chdir(tree.parent)
    items = discover_inputs(["photos"])
    assert items[0].path == tree / "C.PNG"
    assert items[0].relative == PurePosixPath("C.PNG")


def test_symlink_loops_are_not_followed(tmp_path):
    touch(tmp_path / "in", "a.png", "sub/b.png")
    (tmp_path / "in" / "sub" / "loop").symlink_to(tmp_path / "in", target_is_directory=True)
    (tmp_path / "in" / "alias.png").symlink_to(tmp_path / "in" / "sub" / "b.png")
    items = discover_inputs([tmp_path / "in"])
    # alias.png is sub/b.png again: found once, under the name that sorts first
    assert rels(items) == ["a.png", "alias.png"]


def test_a_symlinked_file_is_read(tmp_path):
    touch(tmp_path, "elsewhere/real.png", "in/a.png")
    (tmp_path / "in" / "link.png").symlink_to(tmp_path / "elsewhere" / "real.png")
    assert rels(discover_inputs([tmp_path / "in"])) == ["a.png", "link.png"]


def test_the_output_directory_inside_an_input_directory_is_excluded(tmp_path):
    touch(tmp_path / "in", "a.png", "out/a.png", "out/sub/b.png", "outside.png")
    items = discover_inputs([tmp_path / "in"], exclude=[tmp_path / "in" / "out"])
    assert rels(items) == ["a.png", "outside.png"]
    pattern = str(tmp_path / "in" / "**" / "*.png")
    assert rels(discover_inputs([pattern], exclude=[tmp_path / "in" / "out"])) == \
        ["a.png", "outside.png"]
    assert discover_inputs([tmp_path / "in" / "out" / "a.png"], exclude=[tmp_path / "in"]) == []


# ------------------------------------------------------------------------ globs


def test_glob_without_double_star_stays_in_one_directory(tree):
    items = discover_inputs([str(tree / "*.png")])
    assert rels(items) == ["b.png"]  # glob is case-sensitive; hidden files never match
    everything = discover_inputs([str(tree / "*")])
    assert "README.txt" not in rels(everything)
    assert rels(everything) == ["C.PNG", "a.jpg", "b.png", "d.JpEg", "e.tif", "f.TIFF",
                                "g.bmp", "h.webp"]


def test_glob_with_double_star_is_relative_to_its_fixed_prefix(tree):
    items = discover_inputs([str(tree / "**" / "*.png")])
    assert rels(items) == ["b.png", "sub/x.png"]
    items = discover_inputs([str(tree / "s*" / "**" / "*.tiff")])
    assert rels(items) == ["sub/deeper/y.tiff"]
    assert items[0].path == tree / "sub" / "deeper" / "y.tiff"


def test_relative_glob(tree, monkeypatch):
    monkeypatch.chdir(tree)
    items = discover_inputs(["sub/*.png", "*.jpg"])
    assert rels(items) == ["x.png", "a.jpg"]
    assert items[0].path == tree / "sub" / "x.png"


def test_a_glob_matching_nothing_is_an_error(tree):
    pattern = str(tree / "*.gif")
    message = re.escape(f"input pattern {pattern!r} matches no files")
    with pytest.raises(FileNotFoundError, match=message):
        discover_inputs([pattern])


def test_an_existing_name_with_glob_characters_is_literal(tmp_path):
    touch(tmp_path, "shoot[1]/a.png", "shoot1/b.png")
    assert rels(discover_inputs([tmp_path / "shoot[1]"])) == ["a.png"]


# ------------------------------------------------------------------------ list files


def test_list_file_lines_relative_to_its_directory(tmp_path):
    touch(tmp_path / "set", "a.png", "sub/b.png", "c.txt")
    listing = tmp_path / "set" / "list.txt"
    listing.write_text("# my set\n\nsub/b.png\n  a.png  \n# a.png twice below\n"
                       f"{tmp_path / 'set' / 'a.png'}\nsub/../c.txt\n")
    items = discover_inputs([f"@{listing}"])
    assert rels(items) == ["sub/b.png", "a.png", "c.txt"]  # list order; listed files kept
    assert items[0].path == tmp_path / "set" / "sub" / "b.png"


def test_a_relative_list_file(tmp_path, monkeypatch):
    touch(tmp_path / "set", "a.png")
    (tmp_path / "set" / "list.txt").write_text("a.png\n")
    monkeypatch.chdir(tmp_path)
    items = discover_inputs(["@set/list.txt"])
    assert items == [InputFile(tmp_path / "set" / "a.png", PurePosixPath("a.png"))]


def test_a_missing_listed_file_is_named(tmp_path):
    touch(tmp_path, "a.png")
    listing = tmp_path / "list.txt"
    listing.write_text("a.png\n# fine\nmissing.png\n")
    with pytest.raises(FileNotFoundError, match=r"list\.txt' line 3: 'missing\.png' is not a "
                                                r"file \(relative lines are relative to"):
        discover_inputs([f"@{listing}"])
    with pytest.raises(FileNotFoundError, match=r"list file '.*nolist\.txt' does not exist"):
        discover_inputs([f"@{tmp_path / 'nolist.txt'}"])


def test_listed_files_outside_the_list_directory_are_rejected_not_escaping(tmp_path):
    touch(tmp_path, "in/a.png", "secret/victim.png")
    listing = tmp_path / "in" / "list.txt"
    listing.write_text(f"a.png\n../secret/victim.png\n{tmp_path / 'secret' / 'victim.png'}\n")
    items = discover_inputs([f"@{listing}"])
    assert rels(items) == ["a.png", "../secret/victim.png"]  # the absolute line: same file
    out = tmp_path / "out"
    planned, rejected = plan_outputs(items, out)
    assert [(i.relative, o) for i, o in planned] == [(PurePosixPath("a.png"), out / "a.png")]
    assert len(rejected) == 1
    assert "would leave the output directory" in rejected[0][1]
    assert str(tmp_path / "secret" / "victim.png") in rejected[0][1]
    absolute = InputFile(tmp_path / "secret" / "victim.png",
                         PurePosixPath(str(tmp_path / "secret" / "victim.png")))
    with pytest.raises(ValueError, match=re.escape("absolute, empty or '..'")):
        output_path(absolute, out)


# ------------------------------------------------------------------------ files, order


def test_a_single_file_is_relative_to_its_directory(tree):
    assert discover_inputs([tree / "sub" / "x.png"]) == \
        [InputFile(tree / "sub" / "x.png", PurePosixPath("x.png"))]
    assert rels(discover_inputs([tree / "README.txt"])) == ["README.txt"]  # named: kept
    assert rels(discover_inputs(str(tree / "b.png"))) == ["b.png"]  # one source, not a list


def test_a_missing_source_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"input '.*nope' does not exist"):
        discover_inputs([tmp_path / "nope"])


def test_sources_keep_their_order_and_duplicates_go(tree):
    items = discover_inputs([tree / "sub", tree / "b.png", tree, str(tree / "*.png")])
    assert rels(items) == ["deeper/y.tiff", "x.png", "b.png", "C.PNG", "a.jpg", "d.JpEg",
                           "e.tif", "f.TIFF", "g.bmp", "h.webp"]
    assert items[1].path == tree / "sub" / "x.png"  # first occurrence wins: relative to sub
    assert len({item.path.resolve() for item in items}) == len(items)


# ------------------------------------------------------------------------ output paths


def test_output_mirrors_the_relative_path(tmp_path):
    item = InputFile(tmp_path / "in" / "a" / "b.PNG", PurePosixPath("a/b.PNG"))
    assert output_path(item, tmp_path / "out") == tmp_path / "out" / "a" / "b.PNG"
    assert output_path(item, str(tmp_path / "out")) == tmp_path / "out" / "a" / "b.PNG"


@pytest.mark.parametrize(("format", "name"), [
    ("png", "b.png"), ("PNG", "b.png"), ("jpeg", "b.jpg"), ("jpg", "b.jpg"), ("tiff", "b.tif"),
    ("tif", "b.tif"), ("bmp", "b.bmp"), ("webp", "b.webp"),
])
def test_format_changes_the_suffix(tmp_path, format, name):
    item = InputFile(tmp_path / "b.JPEG", PurePosixPath("x/b.JPEG"))
    assert output_path(item, tmp_path / "out", format=format) == tmp_path / "out" / "x" / name


def test_an_unknown_format_is_an_error(tmp_path):
    item = InputFile(tmp_path / "b.png", PurePosixPath("b.png"))
    with pytest.raises(ValueError, match="`format` must be one of"):
        output_path(item, tmp_path / "out", format="gif")
    with pytest.raises(ValueError, match="`format` must be one of"):
        plan_outputs([item], tmp_path / "out", format="gif")


@pytest.mark.parametrize("relative", ["../x.png", "a/../../x.png", "/etc/x.png", ".", ""])
def test_relative_paths_that_leave_are_refused(tmp_path, relative):
    item = InputFile(tmp_path / "x.png", PurePosixPath(relative))
    with pytest.raises(ValueError, match=r"input '.*x\.png': its relative path .* would leave "
                                         r"the output directory"):
        output_path(item, tmp_path / "out")


def test_a_symlinked_subdirectory_pointing_outside_is_refused(tmp_path):
    out, victim = tmp_path / "out", tmp_path / "victim"
    out.mkdir()
    victim.mkdir()
    (out / "sub").symlink_to(victim, target_is_directory=True)
    item = InputFile(tmp_path / "in" / "sub" / "a.png", PurePosixPath("sub/a.png"))
    with pytest.raises(ValueError, match=rf"resolves to {str(victim / 'a.png')!r}, outside the "
                                         r"output directory .* through a symlink"):
        output_path(item, out)
    (out / "inside").mkdir()
    (out / "alias").symlink_to(out / "inside", target_is_directory=True)
    item = InputFile(tmp_path / "in" / "alias" / "a.png", PurePosixPath("alias/a.png"))
    assert output_path(item, out) == out / "alias" / "a.png"  # a link that stays inside


def test_a_symlink_at_the_target_pointing_outside_is_refused(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (tmp_path / "passwd").write_text("root:x:0:0")
    (out / "x.png").symlink_to(tmp_path / "passwd")
    item = InputFile(tmp_path / "in" / "x.png", PurePosixPath("x.png"))
    with pytest.raises(ValueError, match="outside the output directory"):
        output_path(item, out)
    (out / "y.png").symlink_to("../nowhere")  # dangling, still outside
    with pytest.raises(ValueError, match="outside the output directory"):
        output_path(InputFile(tmp_path / "in" / "y.png", PurePosixPath("y.png")), out)


def test_an_output_directory_that_is_a_symlink_is_fine(tmp_path):
    (tmp_path / "real").mkdir()
    (tmp_path / "out").symlink_to(tmp_path / "real", target_is_directory=True)
    item = InputFile(tmp_path / "a.png", PurePosixPath("a.png"))
    assert output_path(item, tmp_path / "out") == tmp_path / "out" / "a.png"


# ------------------------------------------------------------------------ plans


def test_collisions_keep_the_first_and_name_it(tmp_path):
    touch(tmp_path / "in", "a.png", "a.jpg", "b.tif", "sub/a.png")
    items = discover_inputs([tmp_path / "in"])
    out = tmp_path / "out"
    planned, rejected = plan_outputs(items, out, format="png")
    assert [str(o.relative_to(out)) for _, o in planned] == ["a.png", "b.png", "sub/a.png"]
    assert [i.relative.name for i, _ in planned] == ["a.jpg", "b.tif", "a.png"]
    assert len(rejected) == 1
    item, why = rejected[0]
    assert item.relative == PurePosixPath("a.png")
    assert why == (f"input {str(tmp_path / 'in' / 'a.png')!r}: its output "
                   f"{str(out / 'a.png')!r} is already the output of "
                   f"{str(tmp_path / 'in' / 'a.jpg')!r}; rename one of them")
    planned, rejected = plan_outputs(items, out)  # keeping the formats: no collision
    assert (len(planned), rejected) == (4, [])


def test_collisions_through_a_symlink_inside_the_output(tmp_path):
    out = tmp_path / "out"
    (out / "real").mkdir(parents=True)
    (out / "alias").symlink_to(out / "real", target_is_directory=True)
    items = [InputFile(tmp_path / "1.png", PurePosixPath("real/a.png")),
             InputFile(tmp_path / "2.png", PurePosixPath("alias/a.png"))]
    planned, rejected = plan_outputs(items, out)
    assert [i.path.name for i, _ in planned] == ["1.png"]
    assert "is already the output of" in rejected[0][1]


def test_plan_does_not_touch_the_disk(tmp_path):
    touch(tmp_path / "in", "a.png")
    before = sorted(tmp_path.rglob("*"))
    plan_outputs(discover_inputs([tmp_path / "in"]), tmp_path / "out" / "deep", format="tif")
    assert sorted(tmp_path.rglob("*")) == before


def test_escaping_entries_of_a_list_file_leave_no_trace_outside(tmp_path):
    touch(tmp_path, "in/a.png", "in/b.png", "target.png")
    (tmp_path / "in" / "list.txt").write_text("a.png\n../target.png\nb.png\n")
    items = discover_inputs([f"@{tmp_path / 'in' / 'list.txt'}"])
    planned, rejected = plan_outputs(items, tmp_path / "in" / "out")
    assert [o for _, o in planned] == [tmp_path / "in" / "out" / "a.png",
                                       tmp_path / "in" / "out" / "b.png"]
    assert [i.path for i, _ in rejected] == [tmp_path / "target.png"]
    assert all(os.path.realpath(o).startswith(str(tmp_path / "in" / "out")) for _, o in planned)
