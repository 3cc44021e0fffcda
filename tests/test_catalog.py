"""The catalog: built-in entries, lookups, the chain check, and a stage plus an output kind
added from the tests folder running in a real job, in-process and on Ray."""
from __future__ import annotations

import json

import pytest
import torch

import tests.catalog_extension as ext
from tests.conftest import MEDIA
from vdp import catalog
from vdp.engine.job import run_job
from vdp.engine.plan import plan_stages
from vdp.errors import CatalogError, SpecError
from vdp.io import iter_batches
from vdp.outputs.base import Output
from vdp.spec import JobSpec, list_presets, output_name
from vdp.stages.base import Stage

CLIP = MEDIA / "androidx__bear-vp9-odd-dimensions.webm"  # 161x121, 30 frames


@pytest.fixture
def extension():
    catalog.register_stage(ext.STAGE)
    catalog.register_output(ext.OUTPUT)
    yield
    catalog.unregister("brightness")
    catalog.unregister("brightness_csv")


def brightness_job(**extra) -> JobSpec:
    return JobSpec.parse({"input": str(CLIP), "stages": {"brightness": {"gain": 2.0}},
                          "outputs": [{"kind": "brightness_csv"}],
                          "resources": {"batch_frames": 7}, **extra})


def read_csv(path) -> tuple[list[int], torch.Tensor]:
    rows = [line.split(",") for line in path.read_text().splitlines()[1:]]
    return [int(i) for i, _ in rows], torch.tensor([float(v) for _, v in rows])


def test_builtin_entries_resolve_to_their_classes():
    for entry in catalog.stages():
        cls = entry.stage_class()
        assert issubclass(cls, Stage) and cls.name == entry.name
    for entry in catalog.outputs():
        assert issubclass(entry.output_class(), Output)
    assert [e.name for e in catalog.stages()] == ["depth", "refine", "matte", "stereo"]
    names = [e.file_name for e in catalog.outputs()]
    assert len(names) == len(set(names))


def test_lookups_name_what_is_available():
    assert catalog.output("foreground_webm").media_type == "video/webm"
    assert catalog.output("rgba_png").folder and not catalog.output("depth_npz").folder
    assert catalog.producers("depth") == ["depth"]
    with pytest.raises(CatalogError, match="unknown stage 'blur'; available: depth, refine, matte, stereo"):
        catalog.stage("blur")
    with pytest.raises(CatalogError, match="unknown output kind 'gif'; available: depth_npz, "):
        catalog.output("gif")
    with pytest.raises(CatalogError, match="a stage named 'depth' is already in the catalog"):
        catalog.register_stage(catalog.stage("depth"))


def test_chain_is_checked_at_spec_validation():
    with pytest.raises(SpecError, match="output foreground_webm needs layer 'alpha', which no stage "
                                        r"of this job produces \(enable stages.matte\)"):
        JobSpec.parse({"input": "x.mp4", "stages": {"depth": {}}, "outputs": [{"kind": "foreground_webm"}]})
    with pytest.raises(SpecError, match="stage stereo needs layer 'depth', which no earlier stage of "
                                        r"this job produces \(enable stages.depth\)"):
        JobSpec.parse({"input": "x.mp4", "stages": {"stereo": {}}})
    assert catalog.chain_problems(["depth", "stereo"], ["sbs_half", "depth_npz"]) == []


def test_merge_policies_come_from_the_stage_entries():
    relative = JobSpec.parse({"input": "x", "stages": {"depth": {}, "matte": {}, "stereo": {}}})
    metric = JobSpec.parse({"input": "x", "stages": {"depth": {"model": "metric_vits"}, "refine": {}}})
    assert catalog.merge_policies(relative) == {"depth": "align"}
    assert catalog.merge_policies(metric) == {"depth": "blend"}
    assert catalog.merge_policies(JobSpec.parse({"input": "x", "stages": {"matte": {}}})) == {}


def test_every_preset_plans_from_the_catalog():
    for name in list_presets():
        spec = JobSpec.from_preset(name, input="x.mp4")
        plans = plan_stages(spec)
        assert [p.name for p in plans] == spec.stages.enabled()
        assert [p.cost for p in plans] == [catalog.stage(p.name).cost for p in plans]
        for o in spec.outputs:
            assert output_name(o) == o.name or output_name(o) == catalog.output(o.kind).file_name


def test_extension_stage_is_validated_with_its_options(extension):
    spec = brightness_job()
    assert spec.stages.enabled() == ["brightness"]
    assert isinstance(spec.stages.options("brightness"), ext.BrightnessSpec)
    assert JobSpec.parse(json.loads(spec.to_json())) == spec
    stages_schema = JobSpec.model_json_schema()["$defs"]["StagesSpec"]
    assert "brightness" in stages_schema["properties"] and not stages_schema["additionalProperties"]
    with pytest.raises(SpecError, match=r"stages.brightness.gain|greater than 0"):
        JobSpec.parse({"input": "x", "stages": {"brightness": {"gain": -1}}})
    with pytest.raises(SpecError, match="output brightness_csv needs layer 'brightness', which no stage "
                                        r"of this job produces \(enable stages.brightness\)"):
        JobSpec.parse({"input": "x", "stages": {"depth": {}}, "outputs": [{"kind": "brightness_csv"}]})


def test_unregistered_extension_is_refused():
    with pytest.raises(SpecError, match="unknown stage 'brightness'"):
        JobSpec.parse({"input": "x", "stages": {"brightness": {}}})
    with pytest.raises(SpecError, match="unknown output kind 'brightness_csv'"):
        JobSpec.parse({"input": "x", "outputs": [{"kind": "brightness_csv"}]})


def _expected() -> torch.Tensor:
    return torch.cat([ext.expected_brightness(b.frames, 2.0) for b in iter_batches(CLIP, batch_frames=30)])


def test_extension_runs_in_a_local_job(tmp_path, extension):
    report = run_job(brightness_job(), tmp_path, local=True)
    assert report.status == "succeeded" and report.outputs == ["brightness.csv"]
    indices, values = read_csv(tmp_path / "brightness.csv")
    assert indices == list(range(30))
    torch.testing.assert_close(values, _expected(), rtol=0, atol=1e-6)
    saved = json.loads((tmp_path / "report.json").read_text())
    assert saved["stages"]["brightness"]["frames_done"] == 30


def test_extension_runs_chunked_on_ray(tmp_path, extension, ray_local):
    ray_local.cloudpickle.register_pickle_by_value(ext)
    spec = brightness_job(chunking={"enabled": True, "chunk_frames": 16, "overlap_frames": 4})
    report = run_job(spec, tmp_path, local=False)
    assert report.status == "succeeded" and len(report.chunks["plan"]) == 2
    indices, values = read_csv(tmp_path / "brightness.csv")
    assert indices == list(range(30))
    torch.testing.assert_close(values, _expected(), rtol=0, atol=1e-6)
