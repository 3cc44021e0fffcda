"""Checks a job against its probed input before any actor starts: frame size and shape, and the
memory the requested outputs need against the spec's budget.

The memory figure is an estimate of the frame-proportional part (the full-resolution frames and
layers held at once); the models' own working memory, which depends on the network size and not
on the source resolution, comes on top.
"""
from __future__ import annotations

from vdp import catalog
from vdp.errors import InputError
from vdp.spec import JobSpec
from vdp.types import VideoInfo

MIN_SIDE = 16
MAX_SIDE = 16384
MAX_ASPECT = 16.0
#: Frames the offline depth window can hold back before their depth is final.
DEPTH_WINDOW = 32
#: Bytes per pixel of each layer the job's stages produce (catalog ``produces``); a layer not
#: listed counts as one float32 per pixel.
LAYER_BYTES = {"depth": 4, "alpha": 4, "foreground": 3, "stereo": 6}
#: Extra full-resolution bytes per pixel an output builds per frame while it writes.
OUTPUT_BYTES = {"depth_preview_mp4": 6, "sbs_full": 6, "tb_full": 6, "composite_mp4": 3,
                "foreground_webm": 4, "rgba_png": 4}
#: Host memory of a video output's CPU encoder: MB of its own plus bytes per pixel of its frames
#: (ffmpeg 9 on raw frames at 1080p, 4K and 8K: x264 ultrafast 135 / 376 / 1372 MB, x265
#: 230 / 772 / 2625 MB, libvpx VP9 with alpha at realtime speed 637 / 2124 MB at 1080p / 4K).
#: NVENC's memory is the GPU's; ``encoder: auto`` is counted as a CPU encoder (an upper bound).
ENCODER_MB, ENCODER_BYTES = 60, {"h264": 40, "hevc": 78, "vp9": 250, "prores": 40}
#: Video outputs whose frames are larger than the source's: (width, height) multiples.
VIDEO_SCALE = {"depth_preview_mp4": (2, 1), "sbs_full": (2, 1), "sbs_cross": (2, 1), "rgbd": (2, 1),
               "vr180_sbs": (2, 1), "tb_full": (1, 2)}


def check_input(spec: JobSpec, info: VideoInfo) -> None:
    """Reject a source the job cannot handle, with its dimensions in the message.

    Raises:
        InputError: A side outside [16, 16384], an aspect ratio over 16:1, a size the depth
            network cannot take, or an estimate over ``resources.memory_budget_mb``.
    """
    w, h = info.width, info.height
    where = f"{info.path}: {w}x{h}"
    if min(w, h) < MIN_SIDE or max(w, h) > MAX_SIDE:
        raise InputError(f"{where}: each side must be between {MIN_SIDE} and {MAX_SIDE} pixels")
    if max(w, h) / min(w, h) > MAX_ASPECT:
        raise InputError(f"{where}: aspect ratio {max(w, h) / min(w, h):.1f}:1 is more "
                         f"elongated than the {MAX_ASPECT:g}:1 vdp supports")
    if spec.stages.depth is not None:
        from vdp.models.video_depth_anything.transform import FrameTransform

        try:
            FrameTransform.create(h, w, input_size=spec.stages.depth.input_size,
                                  max_res=spec.stages.depth.max_res)
        except ValueError as exc:
            raise InputError(f"{where}: the depth network cannot take this frame shape "
                             f"({exc})") from None
    budget = spec.resources.memory_budget_mb
    need = estimate_frame_memory_mb(spec, info)
    if budget is not None and need > budget:
        encoders = estimate_encoder_memory_mb(spec, info)
        raise InputError(f"{where}: the requested stages and outputs need about {need:.0f} MB for "
                         f"full-resolution frames and video encoders ({encoders:.0f} MB of it the "
                         f"encoders; resources.memory_budget_mb is {budget:g}); lower batch_frames, "
                         f"drop full-resolution outputs or raise the budget")


def estimate_frame_memory_mb(spec: JobSpec, info: VideoInfo) -> float:
    """Resolution-proportional memory of the job in MB: frames held at once x bytes per pixel,
    plus the video outputs' encoders (`estimate_encoder_memory_mb`)."""
    pixels = info.width * info.height
    layers = {layer for name in spec.stages.enabled() for layer in catalog.stage(name).produces}
    per_frame = 3 + sum(LAYER_BYTES.get(layer, 4) for layer in layers)
    batch = spec.resources.frames_per_batch(info.width, info.height)
    held = 2 * batch + (DEPTH_WINDOW if spec.stages.depth else 0)
    writing = batch * sum(OUTPUT_BYTES.get(o.kind, 3) for o in spec.outputs)
    refining = refine_held_frames(spec) * LAYER_BYTES["depth"]
    kept = kept_tail_frames(spec, info) * 3
    return pixels * (held * per_frame + writing + refining + kept) / 2**20 + estimate_encoder_memory_mb(spec, info)


def kept_tail_frames(spec: JobSpec, info: VideoInfo) -> int:
    """RGB frames a chunk's decoder keeps for the next chunk's overlap (`vdp.engine.kept_sources`):
    the overlap when chunking, none when that would be over `~vdp.engine.kept_sources.TAIL_BYTES`."""
    from vdp.engine.kept_sources import tail_frames

    return tail_frames(spec.chunking.overlap_frames, info.width * info.height * 3) if spec.chunking.enabled else 0


def refine_held_frames(spec: JobSpec) -> int:
    """Depth frames the refiner holds at the source's size until the last window covering them
    has run: a window and a stride (its windows from the spec, else the shipped checkpoint's)."""
    from vdp.models.refiner.config import RUN_WINDOWS

    if spec.stages.refine is None:
        return 0
    frames, overlap = spec.stages.refine.windows or RUN_WINDOWS
    return 2 * frames - overlap


def scaled_pictures(spec: JobSpec, info: VideoInfo) -> list[str]:
    """A line for each output whose pictures are smaller than the source (`OutputSpec.max_side`),
    for the report."""
    from vdp.outputs.depth import picture_size

    lines = []
    for o in spec.outputs:
        h, w = picture_size(o, info.height, info.width)
        if (h, w) != (info.height, info.width):
            lines.append(f"{o.kind}: pictures scaled from the source's {info.width}x{info.height} to "
                         f"{w}x{h} (max_side {o.picture_side()}; 16384 keeps the source's size)")
    return lines


def estimate_encoder_memory_mb(spec: JobSpec, info: VideoInfo) -> float:
    """Host memory of the video outputs' encoders in MB (see `ENCODER_BYTES`)."""
    from vdp.outputs.depth import picture_size
    from vdp.outputs.stereo import choose_codec

    total = 0.0
    for o in spec.outputs:
        media = catalog.output(o.kind).media_type
        if not media.startswith("video/") or (media == "video/mp4" and o.encoder == "nvenc"):
            continue
        sw, sh = VIDEO_SCALE.get(o.kind, (1, 1))
        h, w = picture_size(o, info.height, info.width)
        w, h = w * sw, h * sh
        codec = {"video/webm": "vp9", "video/quicktime": "prores"}.get(media) or \
            ("hevc" if o.encoder == "x265" else choose_codec(w, h))
        total += ENCODER_MB + ENCODER_BYTES[codec] * w * h / 2**20
    return total
