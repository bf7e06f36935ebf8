"""Result documents: a real one round-trips through `dump`/`load`; `validate` rejects what is
not one, with a message that says why; `dump` is atomic."""

from __future__ import annotations

import copy
import json
import math
import re

import pytest

from npaccel.bench import SCHEMA, dump, load, validate
from npaccel.bench._schema import _REQUIRED, _RESULT_REQUIRED


def test_real_document_has_the_schema(bench_doc):
    assert bench_doc["schema"] == SCHEMA == "npaccel.bench/1"
    assert validate(bench_doc) is bench_doc
    assert set(_REQUIRED) <= set(bench_doc)
    for rec in bench_doc["results"]:
        assert set(_RESULT_REQUIRED) <= set(rec)


def test_dump_then_load_round_trips(bench_doc, tmp_path):
    path = tmp_path / "run.json"
    dump(bench_doc, path)
    loaded = load(path)
    assert loaded == json.loads(json.dumps(bench_doc))
    assert json.dumps(loaded, sort_keys=True) == json.dumps(bench_doc, sort_keys=True)
    assert path.read_text().endswith("\n")
    assert load(str(path)) == loaded  # a str path too


def test_dump_overwrites_and_leaves_no_temp_files(bench_doc, tmp_path):
    path = tmp_path / "run.json"
    path.write_text("old")
    dump(bench_doc, path)
    dump(bench_doc, path)
    assert [p.name for p in tmp_path.iterdir()] == ["run.json"]
    assert load(path)["schema"] == SCHEMA


def test_failed_dump_leaves_the_old_file_untouched(bench_doc, tmp_path):
    path = tmp_path / "run.json"
    dump(bench_doc, path)
    before = path.read_bytes()
    bad = copy.deepcopy(bench_doc)
    bad["results"][-1]["flops"] = math.nan  # the end of the document: after some writing
    with pytest.raises(ValueError, match="Out of range float values are not JSON compliant"):
        dump(bad, path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["run.json"]


def test_failed_dump_creates_nothing(bench_doc, tmp_path):
    bad = copy.deepcopy(bench_doc)
    bad["elapsed"] = math.inf
    with pytest.raises(ValueError, match="not JSON compliant"):
        dump(bad, tmp_path / "run.json")
    assert list(tmp_path.iterdir()) == []


def test_dump_into_the_current_directory(bench_doc, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    dump(bench_doc, "run.json")
    assert load(tmp_path / "run.json")["schema"] == SCHEMA
    assert [p.name for p in tmp_path.iterdir()] == ["run.json"]


# --------------------------------------------------------------------------- validate


def test_no_schema_key(bench_doc):
    doc = copy.deepcopy(bench_doc)
    del doc["schema"]
    with pytest.raises(ValueError, match=r"document is not an npaccel bench result \(no 'schema"):
        validate(doc)


@pytest.mark.parametrize("doc", [[], "npaccel.bench/1", None, 1])
def test_not_a_mapping(doc):
    with pytest.raises(ValueError, match="not an npaccel bench result"):
        validate(doc)


def test_other_schema_version_names_both(bench_doc):
    doc = copy.deepcopy(bench_doc)
    doc["schema"] = "npaccel.bench/2"
    with pytest.raises(ValueError, match=r"npaccel\.bench/2") as excinfo:
        validate(doc, "'b.json'")
    message = str(excinfo.value)
    assert "npaccel.bench/2" in message
    assert "npaccel.bench/1" in message
    assert message.startswith("'b.json'")


@pytest.mark.parametrize("schema", ["npaccel.doctor/1", "bench/1", 1, None])
def test_other_schema(bench_doc, schema):
    doc = copy.deepcopy(bench_doc)
    doc["schema"] = schema
    with pytest.raises(ValueError, match=rf"has schema {schema!r}; expected 'npaccel.bench/1'"):
        validate(doc)


@pytest.mark.parametrize("key", _REQUIRED[1:])
def test_missing_required_key(bench_doc, key):
    doc = copy.deepcopy(bench_doc)
    del doc[key]
    with pytest.raises(ValueError, match=rf"document lacks {key}$"):
        validate(doc)


def test_missing_required_keys_are_all_named(bench_doc):
    doc = copy.deepcopy(bench_doc)
    del doc["peaks"], doc["scaling"]
    with pytest.raises(ValueError, match="lacks peaks, scaling"):
        validate(doc)


@pytest.mark.parametrize("key", _RESULT_REQUIRED)
def test_result_missing_a_key(bench_doc, key):
    doc = copy.deepcopy(bench_doc)
    del doc["results"][2][key]
    with pytest.raises(ValueError, match=rf"result 2 lacks {key}"):
        validate(doc)


def test_ok_result_without_samples(bench_doc):
    doc = copy.deepcopy(bench_doc)
    rec = next(r for r in doc["results"] if r["status"] == "ok")
    rec["timing"]["samples"] = []
    with pytest.raises(ValueError, match="has no samples"):
        validate(doc)


def test_ok_result_without_timing_is_a_value_error(bench_doc):
    # validate promises ValueError for anything that is not a valid result; a hand-edited
    # or truncated file with `"timing": null` on an ok result must not escape as TypeError
    doc = copy.deepcopy(bench_doc)
    rec = next(r for r in doc["results"] if r["status"] == "ok")
    rec["timing"] = None
    with pytest.raises(ValueError, match=re.escape(rec["id"])):
        validate(doc)


# --------------------------------------------------------------------------- load


def test_load_missing_file(tmp_path):
    path = tmp_path / "nope.json"
    with pytest.raises(ValueError, match=r"no such result file: .*nope\.json"):
        load(path)


@pytest.mark.parametrize("text", ["", "{not json", "[1, 2", "nan nan"])
def test_load_non_json(tmp_path, text):
    path = tmp_path / "bad.json"
    path.write_text(text)
    with pytest.raises(ValueError, match=r"bad\.json' is not JSON"):
        load(path)


def test_load_binary_file_names_the_file(tmp_path):
    # e.g. `npaccel bench compare charts.png b.json`: the error must say which file
    path = tmp_path / "charts.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    with pytest.raises(ValueError, match=r"charts\.png"):
        load(path)


def test_load_names_the_file_when_invalid(bench_doc, tmp_path):
    doc = copy.deepcopy(bench_doc)
    doc["schema"] = "npaccel.bench/2"
    path = tmp_path / "old.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(ValueError, match=r"^'.*old\.json' is npaccel\.bench/2; .*npaccel.bench/1"):
        load(path)


def test_load_doctor_report(tmp_path):
    path = tmp_path / "doctor.json"
    path.write_text(json.dumps({"schema": "npaccel.doctor/1", "facts": {}, "findings": []}))
    with pytest.raises(ValueError, match=r"has schema 'npaccel\.doctor/1'"):
        load(path)
