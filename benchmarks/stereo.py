"""Stereo stage: speed at 1080p next to the depth stage, view-synthesis quality, range stability.

1. **Speed**: the first ``--frames`` frames of the sam2 juggling clip upscaled to 1920x1080; the
   depth stage (VDA-S, synthetic weights, ``--input-size``, precision auto) and then the stereo
   stage (defaults of `StereoSpec`) on the same frames, on ``--device``. Reports frames per
   second of each and the ratio. Synthetic weights cost the same as real ones.
2. **Quality** on rendered stereo scenes (tests/stereo/scenes.py): the other view synthesised
   from one view and its true depth vs the true view, PSNR/SSIM on co-visible pixels, ours vs
   the naive forward warp; and the stage's output disparity, measured from its pixels, vs
   the requested divergence.
3. **Range stability** on sam2__bedroom.mp4 (static camera) with synthetic-weight depth:
   mean frame-to-frame change of the disparity range (relative to its mean span), streaming
   range vs per-frame min/max.

Usage::

    python benchmarks/stereo.py [--device cpu|cuda] [--frames 32] [--input-size 518]
                                [--range-frames 200] [--skip-speed] [--skip-quality] [--skip-range]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.stereo.scenes import interior, region_disparity, render_scene, synthesise  # noqa: E402
from vdp.io import VideoSource  # noqa: E402
from vdp.spec import DepthSpec, StereoSpec  # noqa: E402
from vdp.stages.base import Stage  # noqa: E402
from vdp.stages.depth import DepthStage  # noqa: E402
from vdp.stages.stereo import HIGH_PCT, LOW_PCT, StereoStage  # noqa: E402
from vdp.stereo.normalise import StreamingRange, frame_percentiles, minmax_ranges  # noqa: E402
from vdp.types import FrameBatch, VideoInfo  # noqa: E402

MEDIA = ROOT / "tests" / "resources" / "media"


def frames_1080p(n: int) -> list[FrameBatch]:
    src = VideoSource(MEDIA / "sam2__05_default_juggle.mp4")
    out = []
    for b in src.batches(batch_frames=8, stop_frame=n):
        up = F.interpolate(b.frames.float(), size=(1080, 1920), mode="bicubic", align_corners=False)
        out.append(FrameBatch(up.round().clamp(0, 255).to(torch.uint8), b.indices, b.pts_seconds))
    return out


def timed_run(stage: Stage, batches: list[FrameBatch], info: VideoInfo, device: str) -> tuple[float, list[FrameBatch]]:
    """Seconds to push every batch through `stage` (flush included) and its outputs."""
    state = stage.init_state(info)
    outs = []
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for b in batches:
        out, state = stage.process(b, state)
        outs.append(out)
    last = stage.flush(state)
    if last is not None:
        outs.append(last)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return time.perf_counter() - t0, [o for o in outs if len(o)]


def speed(args: argparse.Namespace) -> None:
    batches = frames_1080p(args.frames)
    n = sum(len(b) for b in batches)
    info = VideoInfo("juggle_1080p", n, 24.0, n / 24, 1920, 1080, "h264")
    depth = DepthStage(DepthSpec(model="vits", input_size=args.input_size, synthetic_weights=True))
    depth.setup(args.device)
    stereo = StereoStage(StereoSpec())
    stereo.setup(args.device)
    if args.device.startswith("cuda"):  # warm-up (kernels, autotuning) on a few frames
        warm = [batches[0]]
        _, w = timed_run(depth, warm, info, args.device)
        timed_run(stereo, w, info, args.device)
    t_depth, with_depth = timed_run(depth, batches, info, args.device)
    rebatched = [FrameBatch.concat(with_depth)]
    rebatched = [rebatched[0].slice(i, i + 8) for i in range(0, n, 8)]
    t_stereo, _ = timed_run(stereo, rebatched, info, args.device)
    fps_d, fps_s = n / t_depth, n / t_stereo
    print(f"speed ({args.device}, {torch.get_num_threads()} threads, {n} frames 1920x1080): "
          f"depth stage (vits, input {args.input_size}) {fps_d:.2f} fps, stereo stage "
          f"{fps_s:.2f} fps, stereo/depth {fps_s / fps_d:.1f}x")


def quality() -> None:
    scenes = [render_scene(640, 480, seed=s) for s in range(3)]
    for direction in ("L->R", "R->L"):
        ms = [synthesise(s, direction) for s in scenes]
        mean = {k: sum(m[k] for m in ms) / len(ms) for k in ms[0]}
        print(f"quality {direction} (3 scenes 640x480): PSNR {mean['psnr']:.2f} dB vs naive "
              f"{mean['naive_psnr']:.2f} dB; SSIM {mean['ssim']:.4f} vs naive {mean['naive_ssim']:.4f}; "
              f"holes {mean['holes']:.2%} (not co-visible {mean['occluded']:.2%})")
    scene = scenes[0]
    for divergence, convergence in ((1.0, 0.5), (2.0, 0.5), (3.0, 0.0), (4.0, 0.8)):
        stage = StereoStage(StereoSpec(divergence=divergence, convergence=convergence),
                            depth_kind="metric")
        stage.setup("cpu")
        state = stage.init_state(VideoInfo("scene", 1, 30.0, 1 / 30, 640, 480, "raw"))
        batch = FrameBatch((scene.left * 255).round().to(torch.uint8)[None], torch.arange(1),
                           torch.zeros(1, dtype=torch.float64), {"depth": scene.depth_left[None]})
        _, state = stage.process(batch, state)
        left, right = (stage.flush(state).layers["stereo"][0].float() / 255).unbind(0)
        d_px = divergence / 100 * 640
        margin = int(d_px) + 4
        near = interior(scene.depth_left <= scene.z_near_m + 1e-3, margin)
        far = interior(scene.depth_left >= scene.z_far_m - 1e-3, margin)
        measured = region_disparity(left, right, near, d_px) - region_disparity(left, right, far, d_px)
        print(f"divergence {divergence} % (convergence {convergence}): requested {d_px:.2f} px, "
              f"measured {measured:.2f} px, error {measured / d_px - 1:+.2%}")


def range_stability(args: argparse.Namespace) -> None:
    src = VideoSource(MEDIA / "sam2__bedroom.mp4")
    n = min(args.range_frames, src.info.num_frames)
    depth = DepthStage(DepthSpec(model="vits", input_size=args.range_input_size, synthetic_weights=True))
    depth.setup(args.device)
    batches = []
    for b in src.batches(batch_frames=16, stop_frame=n):
        small = F.interpolate(b.frames.float(), size=(270, 480), mode="area").round().to(torch.uint8)
        batches.append(FrameBatch(small, b.indices, b.pts_seconds))
    _, outs = timed_run(depth, batches, src.info, args.device)
    disparity = torch.cat([o.layers["depth"] for o in outs])
    stats = frame_percentiles(disparity, LOW_PCT, HIGH_PCT)
    ours = StreamingRange(lookahead_frames=StereoSpec().lookahead_frames)
    streamed = torch.cat([ours.push(stats[i:i + 16]) for i in range(0, len(stats), 16)] + [ours.finish()])

    def change(r: torch.Tensor) -> float:
        return float((r[1:] - r[:-1]).abs().sum(1).mean() / (r[:, 1] - r[:, 0]).mean())

    def spread(r: torch.Tensor) -> float:
        span = r[:, 1] - r[:, 0]
        return float(span.std() / span.mean())

    mm = minmax_ranges(disparity)
    print(f"range stability (bedroom, {n} frames, synthetic depth at input {args.range_input_size}): "
          f"frame-to-frame change streaming {change(streamed):.4f} vs per-frame min/max "
          f"{change(mm):.4f} (ratio {change(streamed) / change(mm):.3f}); span CV "
          f"{spread(streamed):.3f} vs {spread(mm):.3f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--frames", type=int, default=32)
    ap.add_argument("--input-size", type=int, default=518)
    ap.add_argument("--range-frames", type=int, default=200)
    ap.add_argument("--range-input-size", type=int, default=56)
    ap.add_argument("--skip-speed", action="store_true")
    ap.add_argument("--skip-quality", action="store_true")
    ap.add_argument("--skip-range", action="store_true")
    args = ap.parse_args()
    if not args.skip_quality:
        quality()
    if not args.skip_range:
        range_stability(args)
    if not args.skip_speed:
        speed(args)


if __name__ == "__main__":
    main()
