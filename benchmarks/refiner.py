"""Refiner cost: ms/frame next to Video Depth Anything's at the same size, and growth with T.

    python benchmarks/refiner.py [--size 252x448] [--device cpu] [--threads 1] [--checkpoint X.pt]

1. Refiner ms/frame through the stage's streaming path (the checkpoint's windows with their 3
   context keyframes, blending; ``--frames`` long, so a long window's start and end do not
   dominate) vs VDA-Small ms/frame (one forward of 8 frames, synthetic weights: the cost is the
   same as with real weights) on the same HxW; prints the ratio.
2. With ``--video-size`` (e.g. 1080x1920): the refiner on a depth layer at the video's resolution
   (what the stage gets) vs VDA-Small at its own working size (518x924): the pipeline's ratio.
3. Refiner forward time for one window of T frames, T = 6 .. 96, at a fixed size: the
   per-frame cost must stay flat (linear total cost), with a least-squares line and its R^2.
Times are the minimum over repeats (the machine may be shared). An RGB refiner gets random
uint8 frames beside the depth (its cost does not depend on their content).
"""
from __future__ import annotations

import argparse
import time

import torch

from vdp.models.refiner import derive_confidence, load_refiner
from vdp.refiner.inference import refine_depth


def _best(fn, repeats: int) -> float:
    fn()                                             # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return min(times)


def _frames(t: int, h: int, w: int, device: str) -> torch.Tensor:
    g = torch.Generator().manual_seed(1)
    return torch.randint(0, 256, (t, 3, h, w), generator=g, dtype=torch.uint8).to(device)


def bench_vs_depth(h: int, w: int, device: str, repeats: int, checkpoint: str | None,
                   vda_size: tuple[int, int] | None = None, frames: int = 120) -> dict:
    """Refiner ms/frame on `frames` frames of ``h x w`` depth vs VDA-S ms/frame at `vda_size`
    (default: the same size)."""
    model = load_refiner(checkpoint).to(device)
    g = torch.Generator().manual_seed(0)
    base = torch.rand(1, h, w, generator=g) * 5 + 0.5
    depth = (base * (1 + 0.02 * torch.randn(frames, 1, 1, generator=g))).to(device)
    rgb = _frames(frames, h, w, device)
    ref_s = _best(lambda: refine_depth(model, depth, rgb=rgb, device=device), repeats)
    out = {"size": f"{h}x{w}", "refiner_ms_per_frame": 1000 * ref_s / frames}
    try:
        from vdp.models.video_depth_anything import load_model
    except ImportError as exc:                       # the depth model lives in another package part
        out["vda_error"] = str(exc)
        return out
    vda = load_model("vits", synthetic=True).to(device)
    t = 8
    vh, vw = vda_size or (h, w)
    out["vda_size"] = f"{vh}x{vw}"
    x = torch.randn(1, t, 3, vh, vw, device=device)
    with torch.no_grad():
        vda_s = _best(lambda: vda(x), max(1, repeats // 2))
    out["vda_vits_ms_per_frame"] = 1000 * vda_s / t
    out["ratio_refiner_over_vda"] = out["refiner_ms_per_frame"] / out["vda_vits_ms_per_frame"]
    return out


def bench_window_length(h: int, w: int, device: str, repeats: int, checkpoint: str | None) -> dict:
    model = load_refiner(checkpoint).to(device)
    rows = []
    for t in (6, 12, 24, 48, 96):
        depth = (torch.rand(1, t, h, w) * 5 + 0.5).to(device)
        conf = derive_confidence(depth, model.config.downsample)
        rgb = _frames(t, h, w, device)[None]
        with torch.no_grad():
            s = _best(lambda: model(depth, conf, rgb=rgb), repeats)
        rows.append((t, 1000 * s))
    n = len(rows)
    mx = sum(t for t, _ in rows) / n
    my = sum(ms for _, ms in rows) / n
    slope = sum((t - mx) * (ms - my) for t, ms in rows) / sum((t - mx) ** 2 for t, _ in rows)
    icpt = my - slope * mx
    ss_res = sum((ms - (icpt + slope * t)) ** 2 for t, ms in rows)
    ss_tot = sum((ms - my) ** 2 for _, ms in rows)
    return {"size": f"{h}x{w}", "rows": rows, "ms_per_frame_slope": slope, "intercept_ms": icpt,
            "r2": 1 - ss_res / ss_tot}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", default="252x448", help="HxW of the comparison with VDA (multiples of 14)")
    p.add_argument("--scan-size", default="96x128", help="HxW of the window-length sweep")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--checkpoint", help="refiner checkpoint (default: the shipped one)")
    p.add_argument("--video-size", help="also: refiner on HxW depth vs VDA-S at 518x924")
    p.add_argument("--frames", type=int, default=120, help="frames refined per timing (a few windows)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    h, w = (int(v) for v in args.size.split("x"))
    sh, sw = (int(v) for v in args.scan_size.split("x"))
    print(f"device {args.device}, {args.threads} thread(s), torch {torch.__version__}")
    r = bench_vs_depth(h, w, args.device, args.repeats, args.checkpoint, frames=args.frames)
    print(f"[{r['size']}] refiner {r['refiner_ms_per_frame']:.1f} ms/frame", end="")
    if "vda_vits_ms_per_frame" in r:
        print(f"; VDA-Small {r['vda_vits_ms_per_frame']:.1f} ms/frame; ratio "
              f"{r['ratio_refiner_over_vda']:.3f}")
    else:
        print(f"; VDA unavailable: {r['vda_error']}")
    if args.video_size:
        vh, vw = (int(v) for v in args.video_size.split("x"))
        v = bench_vs_depth(vh, vw, args.device, max(1, args.repeats // 2), args.checkpoint, (518, 924),
                           frames=args.frames)
        print(f"[{v['size']} depth, VDA at {v.get('vda_size')}] refiner {v['refiner_ms_per_frame']:.1f} "
              f"ms/frame; VDA-Small {v.get('vda_vits_ms_per_frame', float('nan')):.1f} ms/frame; ratio "
              f"{v.get('ratio_refiner_over_vda', float('nan')):.3f}")
    s = bench_window_length(sh, sw, args.device, args.repeats, args.checkpoint)
    print(f"[{s['size']}] one window of T frames (forward):")
    for t, ms in s["rows"]:
        print(f"  T={t:3d}: {ms:8.1f} ms  ({ms / t:.2f} ms/frame)")
    print(f"  least squares: {s['intercept_ms']:.1f} ms + {s['ms_per_frame_slope']:.2f} ms x T, "
          f"R^2 = {s['r2']:.4f}")


if __name__ == "__main__":
    main()
