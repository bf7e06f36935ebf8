"""The pipeline spec: text grammar, dict/JSON/YAML forms, validation messages, round trips."""

from __future__ import annotations

import dataclasses
import json
import math
import pickle

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from npaccel.image._ops import OPS, Param, PipelineError, StepError, describe_ops
from npaccel.image._pipeline import Pipeline, Step, _format_value, _parse_value, _scan

EXAMPLE = "grayscale | gaussian sigma=2 | sobel | rescale 0 255 | astype uint8"

# --------------------------------------------------------------------------- values


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        ("2", 2),
        ("-3", -3),
        ("+4", 4),
        ("2.5", 2.5),
        ("1e-3", 1e-3),
        ("-1E+3", -1000.0),
        (".5", 0.5),
        ("inf", math.inf),
        ("-inf", -math.inf),
        ("true", True),
        ("False", False),
        ("none", None),
        ("null", None),
        ("reflect", "reflect"),
        ("grid-mirror", "grid-mirror"),
        ('"a b"', "a b"),
        ("'x|y'", "x|y"),
        ('"say \\"hi\\""', 'say "hi"'),
        ('"2"', "2"),
        ("2,1,0", (2, 1, 0)),
        ("1.5,x", (1.5, "x")),
        ("[0]", (0,)),
        ("[]", ()),
        ("[ 1 , 2 ]", (1, 2)),
        ("[[0,1,0],[1,-4,1]]", ((0, 1, 0), (1, -4, 1))),
        ('["a,b", c]', ("a,b", "c")),
        ("[1e-3, inf, none]", (1e-3, math.inf, None)),
    ],
)
def test_value_forms(raw, value):
    got = _parse_value(raw)
    assert got == value
    assert type(got) is type(value)


def test_nan_value():
    assert math.isnan(_parse_value("nan"))


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("1,", "empty item in list '1,'"),
        ("[1,,2]", r"empty item in list '\[1,,2\]'"),
        ("[1]x[2]", r"cannot read '\[1\]x\[2\]' as one bracketed list"),
        ('"a"b', "as one quoted string"),
        ("ab'c'", "quote the whole value"),
    ],
)
def test_bad_values(raw, message):
    with pytest.raises(PipelineError, match=message):
        _parse_value(raw)


_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(10**20), 10**20)
    | st.floats(allow_nan=False)
    | st.text(max_size=12)
)
_values = st.recursive(_scalars, lambda inner: st.lists(inner, max_size=4).map(tuple),
                       max_leaves=10)  # fmt: skip


@given(_values)
def test_format_then_parse_gives_the_value_back(value):
    # Integral floats may come back as ints (and parameters convert them): compare by ==.
    assert _parse_value(_format_value(value)) == value


@given(st.text(max_size=20))
def test_any_string_survives_a_whole_pipeline_text(text):
    line = f"op x={_format_value(text)} y=[1, {_format_value(text)}] | next"
    steps = _scan(line)
    assert len(steps) == 2
    assert [_parse_value(tok.partition("=")[2]) for tok in steps[0][1:]] == [text, (1, text)]


# --------------------------------------------------------------------------- tokens, steps


def test_pipes_inside_quotes_and_brackets_do_not_split():
    assert _scan("a x=\"p | q\" | b [1, 2] '|' | c") == [
        ["a", 'x="p | q"'],
        ["b", "[1, 2]", "'|'"],
        ["c"],
    ]


def test_the_example_pipeline():
    p = Pipeline.parse(EXAMPLE)
    assert [s.op for s in p] == ["grayscale", "gaussian", "sobel", "rescale", "astype"]
    assert p[1]["sigma"] == 2.0
    assert p[2]["axis"] == "both"
    assert (p[3]["out_min"], p[3]["out_max"]) == (0.0, 255.0)
    assert p[4].kwargs == {"dtype": "uint8"}
    assert len(p) == 5


def test_positionals_bind_in_declared_order():
    (step,) = Pipeline.parse("gaussian 2 1 nearest 3.5")
    assert step.kwargs == {"sigma": 2.0, "order": 1, "mode": "nearest", "cval": 3.5,
                           "truncate": 4.0, "radius": None}  # fmt: skip
    (crop,) = Pipeline.parse("crop 1 2 3 4")
    assert crop.kwargs == {"top": 1, "left": 2, "height": 3, "width": 4}
    (mixed,) = Pipeline.parse("gaussian mode=wrap 1.5")  # names may come first
    assert (mixed["sigma"], mixed["mode"]) == (1.5, "wrap")


def test_weights_matrix_with_spaces_and_list_params():
    p = Pipeline.parse("correlate weights=[[0, 1, 0], [1, -4, 1], [0, 1, 0]] | channels 2,1,0"
                       " | channels [0] | channels 1")  # fmt: skip
    assert p[0]["weights"] == ((0.0, 1.0, 0.0), (1.0, -4.0, 1.0), (0.0, 1.0, 0.0))
    assert [s["channels"] for s in p.steps[1:]] == [(2, 1, 0), (0,), (1,)]
    assert Pipeline.parse("channels -1,0")[0]["channels"] == (-1, 0)


def test_per_channel_floats():
    (step,) = Pipeline.parse("normalize mean=0.485,0.456,0.406 std=[0.229,0.224,0.225]")
    assert step.kwargs == {"mean": (0.485, 0.456, 0.406), "std": (0.229, 0.224, 0.225)}
    assert Pipeline.parse("normalize 0.5 2")[0].kwargs == {"mean": 0.5, "std": 2.0}
    assert Pipeline.parse(str(step)) == Pipeline([step])


def test_names_ignore_case_and_hyphens_and_accept_aliases():
    a = Pipeline.parse("Gaussian-Laplace sigma=1 | gaussian_filter 2 | unsharp-mask")
    assert [s.op for s in a] == ["gaussian_laplace", "gaussian", "unsharp"]
    assert Pipeline.parse("gaussian 1 Truncate=2")[0]["truncate"] == 2.0


def test_quoted_words_are_strings_and_none_means_default():
    assert Pipeline.parse('gaussian 1 mode="nearest"')[0]["mode"] == "nearest"
    assert Pipeline.parse("gaussian 1 radius=none") == Pipeline.parse("gaussian 1")
    assert Pipeline.parse("clip lo=-inf hi=inf")[0].kwargs == {"lo": -math.inf, "hi": math.inf}


def test_steps_are_frozen_complete_equal_and_hashable():
    a = Step("gaussian", {"sigma": 2})
    b = Step.of("gaussian", 2.0, mode="reflect")
    assert a == b
    assert hash(a) == hash(b)
    assert a.params[0] == ("sigma", 2.0)
    assert [name for name, _ in a.params] == [p.name for p in OPS["gaussian"].params]
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.op = "median"  # type: ignore[misc]
    p, q = Pipeline.parse("gaussian 2 | invert"), Pipeline([a, Step("invert")])
    assert p == q
    assert len({p, q}) == 1
    assert list(p) == [a, Step("invert")]


def test_nan_where_allowed_compares_equal():
    p = Pipeline.parse("gaussian 1 mode=constant cval=nan")
    assert math.isnan(p[0]["cval"])
    assert Pipeline.parse(str(p)) == p
    assert hash(Pipeline.parse(str(p))) == hash(p)


def test_canonical_text():
    p = Pipeline.parse(EXAMPLE + " | channels 2,1,0 | percentile 90 5 | flip vertical")
    assert str(p) == (
        "grayscale | gaussian sigma=2 | sobel | rescale out_max=255 | "
        "astype uint8 | channels 2,1,0 | percentile 90 size=5 | flip vertical"
    )
    assert repr(p) == f"Pipeline.parse({str(p)!r})"
    assert Pipeline.parse(str(p)) == p


def test_to_dict_is_canonical_and_json_ready():
    p = Pipeline.parse("gaussian 2 | channels 2,1,0 | correlate [[1, 2]]")
    d = p.to_dict()
    assert d == {"pipeline": [
        {"op": "gaussian", "sigma": 2.0},
        {"op": "channels", "channels": [2, 1, 0]},
        {"op": "correlate", "weights": [[1.0, 2.0]]},
    ]}  # fmt: skip
    assert Pipeline.from_dict(json.loads(json.dumps(d))) == p
    assert Pipeline.from_dict(d["pipeline"]) == p


def test_dict_step_forms():
    want = Pipeline.parse("grayscale | gaussian sigma=2 mode=nearest | channels 2,1,0 | "
                          "stack 3 | invert")  # fmt: skip
    got = Pipeline.from_dict([
        {"op": "grayscale"},
        {"gaussian": {"sigma": 2, "mode": "nearest"}},
        {"channels": [2, 1, 0]},  # one positional value
        "stack 3",  # a text step
        {"invert": None},
    ])  # fmt: skip
    assert got == want
    assert Pipeline.from_dict({"pipeline": "grayscale | gaussian 2"}) == Pipeline.parse(
        "grayscale | gaussian 2"
    )
    assert Pipeline.from_dict([{"op": "gaussian", "sigma": 1, "radius": "none"}]) == (
        Pipeline.parse("gaussian 1"))  # fmt: skip


def test_changes_shape_and_dtype():
    assert not Pipeline.parse("gaussian 1 | median").changes_shape
    assert Pipeline.parse("gaussian 1 | resize factor=0.5").changes_shape
    assert Pipeline.parse("grayscale").changes_shape
    assert not Pipeline.parse("gaussian 1").changes_dtype
    assert Pipeline.parse("gaussian 1 | astype float32").changes_dtype


# --------------------------------------------------------------------------- files


def test_json_files_in_both_forms(tmp_path):
    want = Pipeline.parse("gaussian 2 | sobel")
    listed = tmp_path / "a.json"
    listed.write_text(json.dumps([{"op": "gaussian", "sigma": 2}, {"sobel": {}}]))
    wrapped = tmp_path / "b.JSON"
    wrapped.write_text(json.dumps(want.to_dict()))
    assert Pipeline.from_file(listed) == want
    assert Pipeline.from_file(str(wrapped)) == want


def test_yaml_files_in_both_forms(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text(
        "pipeline:\n"
        "  - grayscale\n"
        "  - op: gaussian\n"
        "    sigma: 2\n"
        "  - median: {size: 5}\n"
        "  - correlate:\n"
        "      weights: [[0, 1, 0], [1, -4, 1], [0, 1, 0]]\n"
        "      mode: constant\n"
        "      cval: .nan\n"
        "  - rescale 0 255\n"
        "  - invert:\n"
    )
    want = Pipeline.parse(
        "grayscale | gaussian 2 | median 5 | correlate "
        "[[0,1,0],[1,-4,1],[0,1,0]] constant nan | rescale 0 255 | invert"
    )
    assert Pipeline.from_file(path) == want
    listed = tmp_path / "q.yml"
    listed.write_text("- {op: astype, dtype: uint8}\n- {rotate90: 3}\n")
    assert Pipeline.from_file(listed) == Pipeline.parse("astype uint8 | rotate90 3")


def test_text_files(tmp_path):
    path = tmp_path / "p.txt"
    path.write_text(EXAMPLE + "\n")
    assert Pipeline.from_file(path) == Pipeline.parse(EXAMPLE)


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("p.cfg", "", r"must end in \.json, \.yaml, \.yml or \.txt; got '.*p\.cfg'"),
        ("p.json", "[{", r"p\.json: not valid JSON"),
        ("p.yaml", "- [", r"p\.yaml: not valid YAML"),
        ("p.yaml", "- gaussian: {sigma: -1}\n",
         r"p\.yaml: step 1 \(gaussian\): `sigma` must be a float >= 0; got -1"),
        ("p.json", '{"steps": []}', r'p\.json: expected \{"pipeline": \[steps\]\}; got keys'),
        ("p.json", '{"pipeline": []}', r"p\.json: the pipeline is empty"),
        ("p.json", '"3"', r"p\.json: step 1: a step must start with an op name; got '3'"),
        ("p.json", "3", "a pipeline must be a list of steps"),
    ],
)  # fmt: skip
def test_file_errors_name_the_file(tmp_path, name, text, message):
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(PipelineError, match=message):
        Pipeline.from_file(path)


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", r"the pipeline is empty; give at least one step, e.g. 'grayscale \| gaussian"),
        ("  ", "the pipeline is empty"),
        ("gaussian 1 || invert", r"step 2: empty step"),
        ("invert |", r"step 2: empty step"),
        ("invert | gausian 2", r"step 2: unknown op 'gausian'; did you mean 'gaussian'\?"),
        ("frobnicate", r"step 1: unknown op 'frobnicate'; known ops: gaussian, uniform, "),
        ("sigma=2", r"step 1: a step must start with an op name; got 'sigma=2'"),
        ("invert | gaussian sigm=2",
         r"step 2 \(gaussian\): unknown parameter 'sigm'; did you mean 'sigma'\? "
         r"\(parameters: sigma, order, mode, cval, truncate, radius\)"),
        ("invert | gaussian", r"step 2 \(gaussian\): missing required parameter `sigma` "
         r"\(a float >= 0\)"),
        ("gaussian 1 2 reflect 0 4 3 9", r"step 1 \(gaussian\): too many positional values: "
         r"gaussian takes at most 6 \(sigma, order, mode, cval, truncate, radius\); got 7"),
        ("invert 3", r"step 1 \(invert\): too many positional values: invert takes no "
         "parameters; got 1: 3"),
        ("gaussian 1 sigma=2", r"step 1 \(gaussian\): `sigma` given twice"),
        ("median size=3 size=5", r"step 1 \(median\): `size` given twice"),
        ("invert | gaussian sigma=abc",
         r"step 2 \(gaussian\): `sigma` must be a float >= 0; got 'abc'"),
        ("gaussian -1", r"`sigma` must be a float >= 0; got -1"),
        ("gaussian inf", r"step 1 \(gaussian\): `sigma` must be finite \(a float >= 0\); "
         "got inf"),
        ("gaussian 1 mode=refelct", r"step 1 \(gaussian\): `mode` must be one of \{'reflect', "
         r"'mirror', 'nearest', 'constant', 'wrap', 'grid-mirror', 'grid-wrap', "
         r"'grid-constant'\}; got 'refelct' \(did you mean 'reflect'\?\)"),
        ("median size=0", r"step 1 \(median\): `size` must be an int >= 1; got 0"),
        ("median size=2.5", r"`size` must be an int >= 1; got 2.5"),
        ("median size=true", r"`size` must be an int >= 1; got True"),
        ("gaussian 1 order=-1", r"`order` must be an int >= 0; got -1"),
        ("percentile 101", r"step 1 \(percentile\): `percentile` must be a float in "
         r"\[-100, 100\]; got 101"),
        ("rank 9", r"step 1 \(rank\): `rank` must be an int in \[-9, 8\] for size 3"),
        ("sobel axis=z", r"`axis` must be one of \{'both', 'x', 'y'\}; got 'z'"),
        ("correlate [1,2]", r"`weights` must be a 2-D list of numbers"),
        ("correlate [[1,2],[3]]", r"`weights` must be a non-empty, rectangular 2-D list"),
        ("correlate [[1,inf]]", r"`weights` must be finite"),
        ("convolve []", r"`weights` must be a non-empty, rectangular"),
        ("grayscale weights=bt2020", r"`weights` must be one of \{'bt601', 'bt709'\}"),
        ("to_float dtype=float16", r"`dtype` must be one of \{'float32', 'float64'\}"),
        ("from_float max_value=0", r"`max_value` must be a float > 0 or none; got 0"),
        ("astype int8", r"step 1 \(astype\): `dtype` must be one of \{'uint8', 'uint16', "
         r"'int16', 'int32', 'float32', 'float64'\}; got 'int8'"),
        ("astype", r"missing required parameter `dtype`"),
        ("normalize std=0", r"`std` must be a float > 0 or a list of them \(one per channel\) "
         "or none; got 0"),
        ("normalize std=1,0", r"`std` must be a float > 0 or a list .*; got \(1, 0\)"),
        ("normalize mean=[]", r"`mean` must be a finite float or a list of them"),
        ("rescale in_min=2 in_max=2", r"step 1 \(rescale\): `in_min` must be less than "
         r"`in_max`; got in_min=2.0, in_max=2.0"),
        ("clip 3 1", r"step 1 \(clip\): `lo` must be <= `hi`; got lo=3.0, hi=1.0"),
        ("threshold", r"step 1 \(threshold\): give exactly one of `value` \(a float\) or "
         r"`method` \('otsu'\)"),
        ("threshold 0.5 otsu", r"give exactly one of `value`"),
        ("threshold method=mean", r"`method` must be one of \{'otsu'\} or none; got 'mean'"),
        ("resize", r"step 1 \(resize\): give `width` and/or `height` .*; got none of them"),
        ("resize width=10 factor=2", r"give `width` and/or `height`.*; got width, factor"),
        ("resize width=10 fx=2", r"; got width, fx"),
        ("resize factor=0", r"`factor` must be a float > 0 or none; got 0"),
        ("resize 10 method=cubic", r"`method` must be one of \{'area', 'bilinear'\}"),
        ("crop 0 0 5", r"missing required parameter `width` \(an int >= 1\)"),
        ("crop -1 0 5 5", r"`top` must be an int >= 0; got -1"),
        ("pad", r"give `all` or at least one of `top`, `bottom`, `left`, `right`"),
        ("pad all=2 mode=edge cval=1", r"`cval` applies to mode='constant' only"),
        ("pad all=2 mode=mirror", r"`mode` must be one of \{'constant', 'edge', 'reflect', "
         r"'symmetric', 'wrap'\}"),
        ("flip", r"missing required parameter `direction` \(one of \{'horizontal', 'vertical',"
         r" 'both'\}\)"),
        ("rotate90 1.5", r"`k` must be an int; got 1.5"),
        ("equalize 1", r"`bins` must be an int >= 2 or none; got 1"),
        ("gamma 0", r"`gamma` must be a float > 0; got 0"),
        ("unsharp threshold=-1", r"`threshold` must be a float >= 0; got -1"),
        ("channels", r"missing required parameter `channels`"),
        ("channels 1.5", r"`channels` must be a list of ints \(e.g. 2,1,0 or \[0\]\); got 1.5"),
        ("channels []", r"`channels` must be a list of ints"),
        ("channels a,b", r"`channels` must be a list of ints .*; got \('a', 'b'\)"),
        ("stack 0", r"`count` must be an int >= 1; got 0"),
        ('gaussian "1', r"step 1: unclosed quote \""),
        ("invert | correlate [[1,2]", r"step 2: unclosed '\['"),
        ("gaussian 1]", r"step 1: unmatched '\]'"),
        ("gaussian sigma=", r"step 1 \(gaussian\): `sigma=` needs a value"),
        ("gaussian sigma=1,", r"step 1 \(gaussian\): `sigma`: empty item in list '1,'"),
    ],
)  # fmt: skip
def test_errors_name_step_op_param_and_rule(text, message):
    with pytest.raises(PipelineError, match=message):
        Pipeline.parse(text)


def test_error_attributes_and_pickling():
    with pytest.raises(PipelineError) as info:
        Pipeline.parse("invert | gaussian sigma=abc")
    err = info.value
    assert (err.step, err.op, err.param) == (2, "gaussian", "sigma")
    assert err.detail == "`sigma` must be a float >= 0; got 'abc'"
    assert isinstance(err, ValueError)
    again = pickle.loads(pickle.dumps(err))
    assert (str(again), again.step, again.op, again.param) == (str(err), 2, "gaussian", "sigma")
    step_error = pickle.loads(pickle.dumps(StepError("window outside", 3, "crop")))
    assert str(step_error) == "step 3 (crop): window outside"
    assert (step_error.step, step_error.op) == (3, "crop")


@pytest.mark.parametrize(
    ("obj", "message"),
    [
        ([], "the pipeline is empty"),
        ({"pipeline": [], "x": 1}, r"expected \{\"pipeline\": \[steps\]\}; got keys"),
        ([{"op": "gaussian"}], r"step 1 \(gaussian\): missing required parameter `sigma`"),
        (["invert", {"gaussian": {"sigma": "2"}}],
         r"step 2 \(gaussian\): `sigma` must be a float >= 0; got '2'"),
        (["invert", {"gaussian": 1, "median": 3}], r"step 2: a step must be \{\"op\": name"),
        (["invert", 3], r"step 2: a step must be"),
        (["invert | median"], r"step 1: a text step must hold one op; got 2"),
        ([{"op": "blurr"}], r"step 1: unknown op 'blurr'; did you mean 'blur'\?"),
        ([{"op": 3}], r"step 1: an op name must be a string; got 3"),
        ([{"op": "median", "sise": 3}], r"unknown parameter 'sise'; did you mean 'size'\?"),
        ([{"channels": {"channels": [0.5]}}], r"`channels` must be a list of ints"),
        (7, r"a pipeline must be a list of steps or \{\"pipeline\": \[\.\.\.\]\}; got int"),
    ],
)  # fmt: skip
def test_dict_errors(obj, message):
    with pytest.raises(PipelineError, match=message):
        Pipeline.from_dict(obj)


def test_step_and_pipeline_constructors_validate():
    with pytest.raises(PipelineError, match=r"^gaussian: `sigma` must be a float >= 0"):
        Step("gaussian", {"sigma": -2})
    with pytest.raises(PipelineError, match="`params` must be a mapping or"):
        Step("gaussian", 3)  # type: ignore[arg-type]
    with pytest.raises(PipelineError, match="the pipeline is empty"):
        Pipeline(())
    with pytest.raises(PipelineError, match=r"step 2: expected a Step; got 'invert'"):
        Pipeline([Step("invert"), "invert"])  # type: ignore[list-item]
    with pytest.raises(PipelineError, match="a pipeline text must be a string"):
        Pipeline.parse(["invert"])  # type: ignore[arg-type]


# --------------------------------------------------------------------------- registry


def test_describe_ops_is_json_ready_and_complete():
    ops = json.loads(json.dumps(describe_ops()))
    assert [op["name"] for op in ops] == list(OPS)
    for op in ops:
        assert op["summary"]
        for p in op["params"]:
            assert p["type"] in {"int", "float", "bool", "str", "choice", "int_list",
                                 "float_list", "float_matrix"}  # fmt: skip
            assert p["rule"]
            assert p["name"] != "op", "a parameter named op would clash with the dict form"
    by_name = {op["name"]: op for op in ops}
    assert "magnitude" in by_name["sobel"]["summary"]
    assert {p["name"]: p for p in by_name["gaussian"]["params"]}["sigma"] == {
        "name": "sigma", "type": "float", "required": True, "default": None, "allowed": None,
        "min": 0, "max": None, "rule": "a float >= 0",
        "help": "Gaussian standard deviation, in pixels",
    }  # fmt: skip
    mode = {p["name"]: p for p in by_name["median"]["params"]}["mode"]
    assert "grid-wrap" in mode["allowed"]
    assert mode["default"] == "reflect"
    assert by_name["resize"]["changes_shape"]
    assert by_name["astype"]["changes_dtype"]


def test_registry_names_are_lower_case_with_underscores():
    for name, op in OPS.items():
        assert name == op.name
        assert name.isidentifier()
        assert name == name.lower()
        for p in op.params:
            assert p.name.isidentifier()
            assert p.name == p.name.lower()


# --------------------------------------------------------------------------- round trips


def _param_values(p: Param) -> st.SearchStrategy:
    lo = p.low if p.low is not None else -50
    hi = p.high if p.high is not None else 50
    if p.type == "int":
        values = st.integers(int(lo), int(min(hi, lo + 12)))
    elif p.type == "float":
        values = st.floats(
            lo, hi, exclude_min=p.open_low, exclude_max=p.open_high, allow_nan=False
        ) | st.integers(math.ceil(lo), int(hi))
        if not p.finite:
            values |= st.sampled_from([math.inf, -math.inf, math.nan])
    elif p.type == "choice":
        values = st.sampled_from(p.allowed)
    elif p.type == "bool":
        values = st.booleans()
    elif p.type == "int_list":
        values = st.lists(st.integers(-3, 5), min_size=1, max_size=4).map(tuple)
    elif p.type == "float_list":
        one = st.floats(lo, hi, exclude_min=p.open_low, exclude_max=p.open_high)
        values = one | st.lists(one, min_size=1, max_size=4).map(tuple)
    elif p.type == "float_matrix":
        values = st.integers(1, 3).flatmap(lambda n: st.lists(
            st.lists(st.floats(-10, 10) | st.integers(-9, 9), min_size=n, max_size=n),
            min_size=1, max_size=3))  # fmt: skip
    else:
        values = st.text(max_size=8)
    if p.nullable:
        values = st.none() | values
    return values


@st.composite
def _steps(draw):
    op = OPS[draw(st.sampled_from(sorted(OPS)))]
    params = {}
    for p in op.params:
        if p.required or draw(st.booleans()):
            params[p.name] = draw(_param_values(p))
    try:
        return Step(op.name, params)
    except PipelineError:
        assume(False)


_pipelines = st.lists(_steps(), min_size=1, max_size=5).map(Pipeline)


@settings(max_examples=200, suppress_health_check=[HealthCheck.filter_too_much])
@given(_pipelines)
def test_random_pipelines_round_trip(p):
    text = str(p)
    assert Pipeline.parse(text) == p
    assert hash(Pipeline.parse(text)) == hash(p)
    assert str(Pipeline.parse(text)) == text
    d = p.to_dict()
    assert Pipeline.from_dict(d) == p
    assert Pipeline.from_dict(json.loads(json.dumps(d))) == p
    assert Pipeline.from_dict(d).to_dict() == d


@settings(max_examples=25, suppress_health_check=[HealthCheck.filter_too_much])
@given(_pipelines)
def test_random_pipelines_round_trip_through_yaml(p):
    yaml = pytest.importorskip("yaml")
    assert Pipeline.from_dict(yaml.safe_load(yaml.safe_dump(p.to_dict()))) == p
