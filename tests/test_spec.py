"""JobSpec, the contract shared by the CLI, the gateway and the SDK: validation messages,
files and presets (package data), and the helpers every stage uses to check its options."""
from __future__ import annotations

import json

import pytest

from vdp import catalog
from vdp.errors import SpecError
from vdp.spec import (PRECISIONS, JobSpec, check_depth_kind, check_precision, list_presets,
                      load_preset, output_name, read_spec_file, with_synthetic_weights)

PRESETS = ["anaglyph", "depth", "depth+matte", "depth+refine", "matte", "metric-depth",
           "metric-depth+refine", "vr-sbs", "vr-tb"]


def spec(**fields) -> dict:
    return {"input": "clip.mp4", "stages": {"depth": {}}, **fields}


def test_defaults_and_round_trip():
    s = JobSpec.parse(spec(outputs=[{"kind": "depth_npz"}, {"kind": "depth_png16", "name": "png"}]))
    assert s.precision == "auto" and s.resources.batch_frames == 16 and not s.chunking.enabled
    assert [output_name(o) for o in s.outputs] == ["depth.npz", "png"]
    assert JobSpec.parse(json.loads(s.to_json())) == s


def test_each_bad_field_is_named_with_its_value():
    with pytest.raises(SpecError) as err:
        JobSpec.parse(spec(precision="int8", resources={"batch_frames": 0}, colour="red"))
    text = str(err.value)
    assert text.startswith("invalid job spec:")
    assert "precision: Input should be 'auto', 'fp16', 'bf16' or 'fp32' (got 'int8')" in text
    assert "resources.batch_frames: Input should be greater than or equal to 1 (got 0)" in text
    assert "colour: Extra inputs are not permitted" in text
    with pytest.raises(SpecError, match="input: Field required"):
        JobSpec.parse({"stages": {}})


def test_cross_field_rules():
    with pytest.raises(SpecError, match=r"overlap_frames \(64\) must be smaller than chunk_frames \(64\)"):
        JobSpec.parse(spec(chunking={"chunk_frames": 64, "overlap_frames": 64}))
    with pytest.raises(SpecError, match=r"replicas names unknown stages \['blur'\]; allowed: "
                                        r"\['depth', 'refine', 'matte', 'stereo'\]"):
        JobSpec.parse(spec(resources={"replicas": {"blur": 2}}))
    with pytest.raises(SpecError, match=r"output names must be unique, repeated: \['depth.npz'\]"):
        JobSpec.parse(spec(outputs=[{"kind": "depth_npz"}, {"kind": "depth_npy", "name": "depth.npz"}]))
    with pytest.raises(SpecError, match="outputs.0.name: String should match pattern"):
        JobSpec.parse(spec(outputs=[{"kind": "depth_npz", "name": "../x"}]))


def test_chain_problems_are_all_listed_in_one_error():
    with pytest.raises(SpecError) as err:
        JobSpec.parse({"input": "x", "stages": {"refine": {}},
                       "outputs": [{"kind": "alpha_mp4"}, {"kind": "sbs_half"}]})
    text = str(err.value)
    assert "stage refine needs layer 'depth', which no earlier stage of this job produces" in text
    assert "output alpha_mp4 needs layer 'alpha', which no stage of this job produces (enable stages.matte)" in text
    assert "output sbs_half needs layer 'stereo'" in text


def test_output_kinds_in_the_schema_come_from_the_catalog():
    schema = JobSpec.model_json_schema()
    kinds = schema["$defs"]["OutputSpec"]["properties"]["kind"]["enum"]
    assert kinds == [e.kind for e in catalog.outputs()]


def test_depth_kind_is_decided_once():
    assert JobSpec.parse(spec()).depth_kind == "relative"
    assert JobSpec.parse(spec(stages={"depth": {"model": "metric_vitb"}})).depth_kind == "metric"
    assert JobSpec.parse({"input": "x", "stages": {"matte": {}}}).depth_kind is None


def test_option_checks_raise_spec_error():
    assert [check_precision(p) for p in PRECISIONS] == list(PRECISIONS)
    with pytest.raises(SpecError, match="precision must be one of auto, fp16, bf16, fp32, got 'int8'"):
        check_precision("int8")
    assert check_depth_kind("metric") == "metric"
    with pytest.raises(SpecError, match="depth_kind must be one of relative, metric, got 'auto'"):
        check_depth_kind("auto")


def test_files_json_and_yaml(tmp_path):
    (tmp_path / "a.json").write_text(json.dumps(spec()))
    (tmp_path / "a.yaml").write_text("input: clip.mp4\nstages:\n  matte: {}\n")
    assert JobSpec.from_file(tmp_path / "a.json").stages.enabled() == ["depth"]
    assert JobSpec.from_file(tmp_path / "a.yaml", input="other.mp4").input == "other.mp4"
    (tmp_path / "bad.yaml").write_text("input: [unclosed\n")
    (tmp_path / "list.json").write_text("[1, 2]")
    with pytest.raises(SpecError, match="bad.yaml is not valid YAML"):
        read_spec_file(tmp_path / "bad.yaml")
    with pytest.raises(SpecError, match="list.json must hold a mapping of spec fields, got list"):
        read_spec_file(tmp_path / "list.json")
    with pytest.raises(SpecError, match="cannot read spec file .*missing.json"):
        read_spec_file(tmp_path / "missing.json")


def test_presets_are_package_data():
    assert sorted(list_presets()) == PRESETS
    assert all(list_presets().values())  # every preset has a description
    for name in PRESETS:
        assert "description" not in load_preset(name)
        assert JobSpec.from_preset(name, input="clip.mp4").outputs
    with pytest.raises(SpecError, match=r"unknown preset 'nope'; available: anaglyph, depth\+matte, "):
        load_preset("nope")
    with pytest.raises(SpecError, match="unknown preset '../x'"):
        load_preset("../x")


def test_synthetic_weights_switch_reaches_every_stage_that_loads_weights():
    data = with_synthetic_weights({"input": "x", "stages": {"depth": {"model": "vitb"}, "refine": {},
                                                            "matte": {}, "stereo": {}}})
    assert data["stages"]["depth"] == {"model": "vitb", "synthetic_weights": True}
    assert data["stages"]["matte"] == {"synthetic_weights": True}
    assert data["stages"]["refine"] == {} and data["stages"]["stereo"] == {}
    assert JobSpec.parse(data).stages.matte.synthetic_weights
