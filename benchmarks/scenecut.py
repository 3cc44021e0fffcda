"""Scene-cut detector accuracy on videos concatenated from pieces of different real clips.

Each test video joins 4 pieces (random clips, offsets and lengths of 20..60 frames) of the
real clips in tests/resources/media, resized to 320x180, encoded to H.264 and decoded again;
the detector runs on the decoded batches (16 frames each). Reports cuts found, missed and
false cuts, and the score margins (lowest score of a true cut, highest score elsewhere).

Usage::

    python benchmarks/scenecut.py [--videos 64] [--seed 0]
"""
from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.analysis.concat import CLIPS, Piece, decode_piece, write_concat  # noqa: E402
from vdp.analysis import SceneCutDetector  # noqa: E402
from vdp.io import iter_batches  # noqa: E402

SIZE = (180, 320)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--videos", type=int, default=64)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(2)
    rng = random.Random(args.seed)
    t0 = time.perf_counter()
    full = {c: decode_piece(Piece(c, a, b - a), SIZE) for c, (a, b) in CLIPS.items()}
    print(f"decoded {len(full)} clips in {time.perf_counter() - t0:.1f} s")
    found = missed = false = 0
    cut_scores: list[float] = []
    other_scores: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        for v in range(args.videos):
            names = rng.sample(sorted(CLIPS), 4)
            parts = []
            for name in names:
                clip = full[name]
                n = rng.randint(20, min(60, len(clip)))
                s = rng.randint(0, len(clip) - n)
                parts.append(clip[s:s + n])
            path = Path(tmp) / f"v{v}.mp4"
            truth = write_concat(parts, path)
            det = SceneCutDetector(keep_scores=True)
            got = [c for b in iter_batches(path, batch_frames=16) for c in det.update(b)]
            found += len(set(got) & set(truth))
            missed += len(set(truth) - set(got))
            false += len(set(got) - set(truth))
            cut_scores += [det.scores[c] for c in truth]
            other_scores += [s for i, s in det.scores.items() if i not in truth]
            if set(got) != set(truth):
                print(f"video {v} {names}: truth {truth}, detected {got}")
    total = found + missed
    print(f"videos: {args.videos}, true cuts: {total}, found: {found}, missed: {missed}, "
          f"false cuts: {false}")
    print(f"recall {found / total:.3f}, precision {found / max(1, found + false):.3f}")
    print(f"lowest true-cut score {min(cut_scores):.3f}, highest other score {max(other_scores):.3f}")
    print(f"total {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main()
