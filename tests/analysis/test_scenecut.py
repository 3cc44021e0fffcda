"""Scene-cut detection on a video concatenated from 4 different real clips, and the engine
restarting temporal state at the cuts (depth windows and the stereo range never span two shots)."""
from __future__ import annotations

import pytest
import torch

from tests.analysis.concat import Piece, decode_piece, write_concat
from tests.stereo.depth_fixture import synthetic_depth_stage
from vdp.analysis import SceneCutDetector, hsv_histograms
from vdp.engine.local import LocalRunner
from vdp.engine.plan import StagePlan
from vdp.engine.segments import split_at_cuts
from vdp.io import iter_batches, probe
from vdp.models.video_depth_anything.configs import WINDOWING
from vdp.spec import StereoSpec
from vdp.stages.depth import DepthStage
from vdp.stages.stereo import StereoStage
from vdp.types import FrameBatch

SIZE = (144, 256)
PIECE_FRAMES = 12
PIECES = [Piece("sam2__bedroom.mp4", 0, PIECE_FRAMES),
          Piece("androidx__sample_with_increasing_timestamps_360p.mp4", 100, PIECE_FRAMES),
          Piece("decord__flipping_a_pancake.mkv", 50, PIECE_FRAMES),
          Piece("androidx__bear-vp9-odd-dimensions.webm", 0, PIECE_FRAMES)]


@pytest.fixture(scope="module")
def concat_video(tmp_path_factory) -> tuple[str, list[int]]:
    path = tmp_path_factory.mktemp("scenecut") / "four_clips.mp4"
    truth = write_concat([decode_piece(p, SIZE) for p in PIECES], path)
    return str(path), truth


@pytest.mark.parametrize("batch_frames", [16, 5])
def test_finds_every_cut_and_no_false_cut(concat_video, batch_frames):
    path, truth = concat_video
    assert truth == [12, 24, 36]
    det = SceneCutDetector(keep_scores=True)
    found = [c for b in iter_batches(path, batch_frames=batch_frames) for c in det.update(b)]
    inside = max(s for i, s in det.scores.items() if i not in truth)
    print(f"cuts {found}; lowest cut score {min(det.scores[c] for c in truth):.3f}, "
          f"highest other {inside:.3f}")
    assert found == truth


def test_histograms_and_detector_rules():
    frames = torch.zeros(2, 3, 20, 30, dtype=torch.uint8)
    frames[1, 0] = 255  # black -> red: every pixel changes colour class
    hist = hsv_histograms(frames)
    assert torch.allclose(hist.sum(1), torch.ones(2))
    assert float(0.5 * (hist[0] - hist[1]).abs().sum()) == 1.0
    det = SceneCutDetector(min_shot_frames=3)
    black, red = frames[:1].expand(4, -1, -1, -1), frames[1:].expand(4, -1, -1, -1)

    def batch(x: torch.Tensor, first: int) -> FrameBatch:
        idx = torch.arange(first, first + len(x))
        return FrameBatch(x.contiguous(), idx, idx / 30.0)

    assert det.update(batch(black, 0)) == []
    assert det.update(batch(torch.cat([red[:1], black[:1], red[:2]]), 4)) == [4]  # flash guard
    assert det.update(batch(frames[:0], 8)) == []
    with pytest.raises(ValueError, match="out of order"):
        det.update(batch(black, 2))
    with pytest.raises(ValueError, match="min_threshold"):
        SceneCutDetector(min_threshold=0)
    with pytest.raises(ValueError, match="factor"):
        SceneCutDetector(factor=0.5)


def _run(batches: list[FrameBatch], info, windows: list[tuple[int, int]]) -> FrameBatch:
    """Depth (synthetic weights) + stereo through the local runner; records depth windows."""
    depth = synthetic_depth_stage()
    stereo = StereoStage(StereoSpec(lookahead_frames=4))

    def recording(x, window_info):
        windows.append((window_info.first_frame, window_info.last_frame))
        return DepthStage._run_window(depth, x, window_info)

    depth._run_window = recording
    try:
        runner = LocalRunner([StagePlan("depth", "t", lambda: depth),
                              StagePlan("stereo", "t", lambda: stereo)])
        out: list[FrameBatch] = []
        runner.run(batches, info, out.append)
    finally:
        del depth._run_window
    return FrameBatch.concat(out)


def test_depth_windows_and_stereo_ranges_restart_at_cuts(concat_video):
    path, truth = concat_video
    info = probe(path)
    assert PIECE_FRAMES < WINDOWING.infer_len  # one window would span several shots
    det = SceneCutDetector()
    batches = list(split_at_cuts(iter_batches(path, batch_frames=16), det.update))
    assert [int(b.indices[0]) for b in batches if b.starts_segment] == truth
    windows: list[tuple[int, int]] = []
    out = _run(batches, info, windows)
    assert out.indices.tolist() == list(range(4 * PIECE_FRAMES))
    bounds = [0, *truth, 4 * PIECE_FRAMES]
    shots = list(zip(bounds[:-1], bounds[1:]))
    print(f"depth windows {windows}, shots {shots}")
    for first, last in windows:
        assert any(a <= first and last < b for a, b in shots), f"window {first}-{last} spans a cut"
    # the third shot alone, from a fresh runner, gives the same depth and views: nothing of the
    # earlier shots leaked into it
    a, b = shots[2]
    alone = _run([x for x in batches if a <= int(x.indices[0]) < b], info, [])
    assert torch.equal(out.layers["depth"][a:b], alone.layers["depth"])
    assert torch.equal(out.layers["stereo"][a:b], alone.layers["stereo"])
