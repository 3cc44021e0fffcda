"""Decoding a chunked job: chunk starts on the input's keyframes vs the plain grid.

Every chunk's decoding starts at the keyframe at or before the first frame it runs, so a chunk
that starts inside a group of pictures decodes the frames before its start once more, for
nothing (`vdp.engine.chunks`). This makes a 1280x720 H.264 clip (the juggle sample scaled and
looped; FFmpeg's default GOP of 250 unless ``--gop``), plans its chunks both ways and decodes
every chunk's run range with its own freshly opened source (as separate replicas do), in this
process, alternating the two plans ``--repeat`` times. Printed: frames decoded before run
starts (`decode_lead`), CPU ms per output frame (best run) and the ratio keyframe / plain.

    python benchmarks/chunk_decode.py                      # 1500 frames, chunks of 320 + 32
    python benchmarks/chunk_decode.py --gop 60 --chunk-frames 640 --frames 3000
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import MEDIA  # noqa: E402
from vdp.engine.chunks import Chunk, decode_lead, plan_chunks  # noqa: E402
from vdp.io import VideoSource, probe  # noqa: E402
from vdp.io._ffmpeg import ffmpeg_exe  # noqa: E402
from vdp.spec import ChunkingSpec  # noqa: E402

CLIP = MEDIA / "sam2__05_default_juggle.mp4"


def make_clip(folder: Path, frames: int, gop: int | None) -> Path:
    """The sample at 1280x720 H.264, looped to `frames` frames, a keyframe every `gop` (None:
    FFmpeg's default)."""
    out = folder / "clip_720p.mp4"
    keys = ["-g", str(gop)] if gop else []
    subprocess.run([ffmpeg_exe(), "-v", "error", "-y", "-stream_loop", "-1", "-i", str(CLIP),
                    "-frames:v", str(frames), "-vf", "scale=1280:720", "-c:v", "libx264", "-preset",
                    "veryfast", "-crf", "20", *keys, "-pix_fmt", "yuv420p", "-an", str(out)],
                   check=True, timeout=900)
    return out


def decode_chunks(path: Path, chunks: list[Chunk], batch_frames: int) -> float:
    """CPU seconds to decode every chunk's run range, each with its own newly opened source."""
    cpu = time.process_time()
    for c in chunks:
        with VideoSource(path) as source:
            for _ in source.batches(batch_frames=batch_frames, start_frame=c.run_start, stop_frame=c.stop):
                pass
    return time.process_time() - cpu


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--frames", type=int, default=1500)
    p.add_argument("--gop", type=int, default=None, help="keyframe interval (default: FFmpeg's, 250)")
    p.add_argument("--chunk-frames", type=int, default=320)
    p.add_argument("--overlap-frames", type=int, default=32)
    p.add_argument("--batch-frames", type=int, default=16)
    p.add_argument("--repeat", type=int, default=2)
    args = p.parse_args()
    chunking = ChunkingSpec(enabled=True, chunk_frames=args.chunk_frames, overlap_frames=args.overlap_frames)
    with tempfile.TemporaryDirectory(prefix="vdp_chunk_decode_") as tmp:
        clip = make_clip(Path(tmp), args.frames, args.gop)
        keys = probe(clip).keyframes
        plans = {"plain": plan_chunks(args.frames, chunking), "keyframes": plan_chunks(args.frames, chunking, keys)}
        cpu: dict[str, list[float]] = {name: [] for name in plans}
        for _ in range(args.repeat):
            for name, chunks in plans.items():
                cpu[name].append(decode_chunks(clip, chunks, args.batch_frames))
    print(f"{args.frames} frames 1280x720, {len(keys or [])} keyframes, chunks of {args.chunk_frames} "
          f"+ {args.overlap_frames} overlap")
    print(f"{'plan':<10} {'chunks':>6} {'lead frames':>11} {'CPU ms/frame':>12}")
    best = {}
    for name, chunks in plans.items():
        best[name] = min(cpu[name]) * 1000 / args.frames
        print(f"{name:<10} {len(chunks):>6} {decode_lead(chunks, keys) or 0:>11} {best[name]:>12.2f}")
    print(f"keyframes / plain CPU: {best['keyframes'] / best['plain']:.2f}")


if __name__ == "__main__":
    main()
