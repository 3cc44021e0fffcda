"""Seams: a chunked run on several replicas against one sequential pass over the same frames."""
from __future__ import annotations

import json
from functools import partial

import numpy as np
import pytest

from vdp.engine.job import run_job
from vdp.engine.plan import StagePlan
from vdp.spec import JobSpec
from tests.conftest import MEDIA
from tests.engine.stages_for_tests import ChunkAffineStage

CLIP = MEDIA / "decord__flipping_a_pancake.mkv"  # 426x240, 310 frames
FRAMES = 70


def spec(chunking: dict | None = None, outputs: list[dict] | None = None, **resources) -> JobSpec:
    return JobSpec.parse({"input": str(CLIP), "max_frames": FRAMES, "stages": {"depth": {}},
                          "outputs": outputs or [{"kind": "depth_npz"}],
                          "resources": {"batch_frames": 8, **resources},
                          "chunking": chunking or {}})


def affine_plans(seconds: float = 0.0):
    return [StagePlan("depth", f"affine{seconds}", partial(ChunkAffineStage, 0.3, seconds), num_gpus=1.0)]


def layers(out_dir) -> dict[str, np.ndarray]:
    return {"depth": np.load(out_dir / "depth.npz")["depth"]}


def rel_err(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).max() / np.abs(b).max())


@pytest.fixture(scope="module")
def sequential(tmp_path_factory):
    out = tmp_path_factory.mktemp("sequential")
    run_job(spec(), out, local=True, plans=affine_plans())
    return out


@pytest.mark.parametrize("replicas", [2, 3])
def test_chunked_run_on_fake_gpu_replicas_matches_sequential_pass(tmp_path, sequential, fresh_actors, replicas):
    chunking = {"enabled": True, "chunk_frames": 16, "overlap_frames": 8}
    report = run_job(spec(chunking, replicas={"depth": replicas}), tmp_path, plans=affine_plans())
    assert rel_err(layers(tmp_path)["depth"], layers(sequential)["depth"]) < 1e-3
    # every replica is its own actor pinned to its own (fake) GPU, and chunks were spread over them
    reps = report.placement["replicas"]["depth"]
    assert [r["name"] for r in reps] == [f"vdp:depth:affine0.0:{i}" for i in range(replicas)]
    assert len({tuple(r["gpu_ids"]) for r in reps}) == replicas and all(r["gpu_ids"] for r in reps)
    assert sum(r["chunks"] > 0 for r in reps) >= 2
    assert sum(r["chunks"] for r in reps) == len(report.chunks["plan"]) == 4  # the 6-frame tail was folded
    # chunks were aligned by a non-trivial scale/shift (they really disagreed)
    assert all(abs(s["depth"]["scale"] - 1) > 1e-3 for s in report.chunks["seams"])
    # each chunk decoded only its own frames (seeking to its start), never from zero
    saved = json.loads((tmp_path / "report.json").read_text())
    assert saved["stages"]["decode"]["frames_done"] == FRAMES + 3 * 8
    assert saved["stages"]["write"]["frames_done"] == FRAMES


def test_recurrent_layer_is_warmed_by_the_overlap():
    """``alpha`` (an EMA) is taken from the earlier chunk on the overlap and warmed in the later."""
    from vdp.engine.chunks import plan_chunks
    from vdp.engine.local import LocalRunner
    from vdp.engine.merge import ChunkMerger, merge_policies
    from vdp.io import iter_batches, probe
    from vdp.types import FrameBatch

    s = spec({"enabled": True, "chunk_frames": 16, "overlap_frames": 8})
    info = probe(CLIP)
    chunks = plan_chunks(FRAMES, s.chunking)
    out: list[FrameBatch] = []
    merger = ChunkMerger(chunks, merge_policies("relative"), out.append)
    runner = LocalRunner(affine_plans())
    for c in chunks:
        runner.run(iter_batches(CLIP, batch_frames=8, start_frame=c.run_start, stop_frame=c.stop), info, merger.feed)
        merger.end_chunk()
    merger.finish()
    seq: list[FrameBatch] = []
    LocalRunner(affine_plans()).run(iter_batches(CLIP, batch_frames=8, stop_frame=FRAMES), info, seq.append)
    a = FrameBatch.concat(out).layers["alpha"].numpy()
    b = FrameBatch.concat(seq).layers["alpha"].numpy()
    assert rel_err(a, b) < 1e-3  # 0.3**8: the warm-up forgot the fresh state


@pytest.mark.slow
def test_vda_seam_absrel_against_sequential_pass():
    """Real VDA (synthetic weights): the merge's AbsRel against one pass, vs dropping overlaps.

    Measured, printed (``pytest -s``) and bounded: the LSQ-aligned, cross-faded merge must be
    closer to the sequential pass than the seed's merge (overlap thrown away, no alignment).
    """
    from vdp.engine.chunks import plan_chunks
    from vdp.engine.local import LocalRunner
    from vdp.engine.merge import ChunkMerger, merge_policies
    from vdp.io import iter_batches, probe
    from vdp.spec import ChunkingSpec, DepthSpec
    from vdp.stages.depth import DepthStage
    from vdp.types import FrameBatch

    frames, info = 64, probe(CLIP)
    plans = [StagePlan("depth", "vda", partial(DepthStage, DepthSpec(model="vits", input_size=56,
                                                                      synthetic_weights=True)))]
    runner = LocalRunner(plans)
    seq: list[FrameBatch] = []
    runner.run(iter_batches(CLIP, batch_frames=16, stop_frame=frames), info, seq.append)
    chunks = plan_chunks(frames, ChunkingSpec(enabled=True, chunk_frames=32, overlap_frames=12))
    merged: list[FrameBatch] = []
    naive: list[FrameBatch] = []
    m_merge = ChunkMerger(chunks, merge_policies("relative"), merged.append)
    m_naive = ChunkMerger(chunks, {}, naive.append)  # keep chunk k on the overlap, no alignment
    for c in chunks:
        for b in _run_chunk(runner, c, info):
            m_merge.feed(b)
            m_naive.feed(b)
        m_merge.end_chunk()
        m_naive.end_chunk()
    m_merge.finish()
    m_naive.finish()
    ref = FrameBatch.concat(seq).layers["depth"].numpy()
    valid = ref > 1e-3 * ref.max()
    seam = slice(chunks[1].run_start, chunks[1].start + 12)

    def absrel(out: list[FrameBatch], frames_slice=slice(None)) -> float:
        d = FrameBatch.concat(out).layers["depth"].numpy()[frames_slice]
        r, v = ref[frames_slice], valid[frames_slice]
        return float((np.abs(d - r)[v] / r[v]).mean())

    numbers = {"merged": absrel(merged), "merged_seam": absrel(merged, seam),
               "naive": absrel(naive), "naive_seam": absrel(naive, seam),
               "fit": m_merge.seams[0].to_dict()["depth"]}
    print("\nVDA seam AbsRel vs sequential:", json.dumps(numbers))
    assert numbers["merged"] < numbers["naive"] and numbers["merged_seam"] < numbers["naive_seam"]


def _run_chunk(runner, chunk, info):
    from vdp.io import iter_batches

    out = []
    runner.run(iter_batches(CLIP, batch_frames=16, start_frame=chunk.run_start, stop_frame=chunk.stop),
               info, out.append)
    return out


def test_chunks_start_at_the_inputs_keyframes_and_a_sparse_gop_is_reported(tmp_path, sequential):
    import subprocess

    import imageio_ffmpeg

    from vdp.io import probe

    keyed = tmp_path / "keyed.mp4"  # the same frames with a keyframe every 12
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-i", str(CLIP), "-frames:v", str(FRAMES),
                    "-c:v", "libx264", "-qp", "0", "-g", "12", "-keyint_min", "12", "-sc_threshold", "0",
                    "-pix_fmt", "yuv420p", str(keyed)], check=True, timeout=120)
    keys = list(probe(keyed).keyframes)
    assert keys == list(range(0, FRAMES, 12))
    assert probe(CLIP).keyframes == (0, 150, 300) and "keyframes" not in probe(CLIP).to_dict()
    chunking = {"enabled": True, "chunk_frames": 20, "overlap_frames": 4}
    data = spec(chunking).model_dump(exclude_none=True)
    report = run_job(JobSpec.parse({**data, "input": str(keyed)}), tmp_path / "keyed", local=True,
                     plans=affine_plans())
    plan = report.chunks["plan"]
    assert len(plan) > 2 and all(c["run_start"] in keys for c in plan)  # 16 -> 12, 36 -> 36, 56 -> 60 ...
    assert report.chunks["decode_lead_frames"] == 0
    assert not any("keyframe" in w for w in report.warnings)
    # the pancake clip has keyframes at 0, 150 and 300: every chunk decodes from frame 0
    report = run_job(spec(chunking), tmp_path / "sparse", local=True, plans=affine_plans())
    starts = [c["run_start"] for c in report.chunks["plan"][1:]]
    assert report.chunks["decode_lead_frames"] == sum(starts) > FRAMES // 4
    assert any("3 keyframe(s) in 310 frames" in w and "chunk_frames" in w for w in report.warnings)
    assert rel_err(layers(tmp_path / "sparse")["depth"], layers(sequential)["depth"]) < 1e-3
