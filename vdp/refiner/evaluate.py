"""Held-out evaluation of a refiner against the raw teacher and tuned simple filters.

Procedural test sequences use seeds disjoint from training (`vdp.refiner.splits`); the
baselines' parameters are chosen on a separate validation split with the refiner's own bar:
the lowest flicker among the settings whose AbsRel is at most 1 % (relative) above the
teacher's (or the lowest AbsRel when none qualifies). For transparency the table also shows
"oracle" baselines tuned the same way on the test split itself.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn.functional as F

from vdp.models.refiner.confidence import derive_confidence
from vdp.models.refiner.load import load_refiner
from vdp.refiner.baselines import BILATERAL_GRID, EMA_DECAYS, ema, temporal_bilateral
from vdp.refiner.inference import refine_depth
from vdp.refiner.metrics import MetricSums, static_mask, tae_sums
from vdp.refiner.splits import TEACHER_SEED_OFFSET, TEST_SEED_BASE, VAL_SEED_BASE
from vdp.refiner.teacher import simulate_teacher

#: Confidence strata (derived confidence of the teacher, see vdp.models.refiner.confidence;
#: about terciles on the procedural test split).
STRATA = (("low", 0.0, 0.45), ("mid", 0.45, 0.65), ("high", 0.65, 1.01))
#: AbsRel may be at most this much (relative) above the teacher's.
ABSREL_TOLERANCE = 0.01
#: Flicker must be at least this much (relative) below the teacher's.
FLICKER_REDUCTION = 0.30


@dataclass
class EvalSequence:
    """One evaluation sequence (metric depth)."""

    name: str
    gt: torch.Tensor
    valid: torch.Tensor
    teacher: torch.Tensor
    dynamic: torch.Tensor | None = None
    intrinsics: torch.Tensor | None = None
    poses: torch.Tensor | None = None


def synthetic_sequences(seed_base: int, count: int, *, frames: int = 60, height: int = 96,
                        width: int = 128) -> list[EvalSequence]:
    """Procedural sequences with seeds ``seed_base + i`` and simulated teachers."""
    from vdp.refiner.synthetic import render_clip

    out = []
    for i in range(count):
        clip = render_clip(seed_base + i, frames=frames, height=height, width=width)
        teacher = simulate_teacher(clip.depth, seed_base + i + TEACHER_SEED_OFFSET)
        out.append(EvalSequence(f"proc-{seed_base + i}", clip.depth, clip.depth > 0, teacher,
                                clip.dynamic, clip.intrinsics, clip.poses))
    return out


def rgbd_sequences(root: str | Path, *, frames: int | None = None,
                   size: tuple[int, int] | None = None) -> list[EvalSequence]:
    """RGB-D sequences (real teacher from ``teacher/`` or simulated from ground truth)."""
    from vdp.refiner.rgbd import fill_holes, find_sequences, load_rgbd_sequence

    out = []
    for i, path in enumerate(find_sequences(root)):
        s = load_rgbd_sequence(path, max_frames=frames, size=size, load_rgb=False)
        teacher = s.teacher if s.teacher is not None else \
            simulate_teacher(fill_holes(s.depth), TEST_SEED_BASE + i + TEACHER_SEED_OFFSET)
        out.append(EvalSequence(s.name, s.depth, s.depth > 0, teacher, None, s.intrinsics, s.poses))
    return out


def confidence_map(teacher: torch.Tensor, downsample: int, window: int) -> torch.Tensor:
    """Per-frame full-res confidence ``[T, H, W]`` from a window of teacher frames around t."""
    t_len, h, w = teacher.shape
    out = torch.empty_like(teacher)
    for t in range(t_len):
        s = min(max(0, t - window // 2), max(0, t_len - window))
        c = derive_confidence(teacher[None, s:s + window].clamp_min(1e-6), downsample)[0, 0]
        out[t] = F.interpolate(c[None, None], size=(h, w), mode="bilinear", align_corners=False)[0, 0]
    return out


def score(preds: list[torch.Tensor], seqs: list[EvalSequence], *, tae: bool = False,
          conf: list[torch.Tensor] | None = None) -> dict[str, Any]:
    """Pooled metrics of predictions (one per sequence)."""
    m = MetricSums()
    for i, (p, s) in enumerate(zip(preds, seqs)):
        m.add_depth(p, s.gt, s.valid)
        static = static_mask(s.gt, s.valid)
        m.add_flicker(p, static)
        if tae and s.poses is not None and s.intrinsics is not None:
            m.add_tae(tae_sums(p, s.gt, s.valid, s.dynamic, s.intrinsics, s.poses))
        if conf is not None:
            for name, lo, hi in STRATA:
                band = (conf[i] >= lo) & (conf[i] < hi)
                m.add_stratum(name, p, s.gt, s.valid & band, static & band[1:])
    return m.result()


def _tune(seqs: list[EvalSequence], teacher_absrel: float,
          candidates: list[tuple[Any, Callable[[torch.Tensor], torch.Tensor]]]) -> tuple[Any, dict]:
    """The candidate with the lowest flicker whose AbsRel meets the bar (else lowest AbsRel)."""
    scored = [(param, score([fn(s.teacher) for s in seqs], seqs)) for param, fn in candidates]
    ok = [x for x in scored if x[1]["abs_rel"] <= teacher_absrel * (1 + ABSREL_TOLERANCE)]
    return min(ok, key=lambda x: x[1]["flicker"]) if ok else min(scored, key=lambda x: x[1]["abs_rel"])


def _ema_candidates():
    return [(a, lambda d, a=a: ema(d, a)) for a in EMA_DECAYS]


def _bilateral_candidates():
    return [(p, lambda d, p=p: temporal_bilateral(d, *p)) for p in BILATERAL_GRID]


def evaluate(checkpoint: str | Path | None = None, *, data: str = "synthetic", test_count: int = 8,
             val_count: int = 4, frames: int = 60, height: int = 96, width: int = 128,
             oracle: bool = True, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Evaluate a refiner checkpoint (default: the shipped one) and the baselines.

    Args:
        checkpoint: Refiner checkpoint; None = shipped.
        data: ``synthetic`` or a folder of RGB-D sequences (then the first half of the
            sequences is the validation split, the rest the test split).
        test_count: Procedural test sequences.
        val_count: Procedural validation sequences (baseline tuning).
        frames: Frames per procedural sequence.
        height: Procedural frame height.
        width: Procedural frame width.
        oracle: Also tune the baselines on the test split (reported separately).
        log: Progress lines.

    Returns:
        ``{"rows": {method: metrics}, "params": {...}, "bar": {...}, "setup": {...}}``.
    """
    t0 = time.monotonic()
    model = load_refiner(checkpoint)
    if data == "synthetic":
        val = synthetic_sequences(VAL_SEED_BASE, val_count, frames=frames, height=height, width=width)
        test = synthetic_sequences(TEST_SEED_BASE, test_count, frames=frames, height=height, width=width)
    else:
        seqs = rgbd_sequences(data, frames=frames, size=(height, width))
        if len(seqs) < 2:
            raise ValueError(f"{data}: need at least 2 sequences (validation + test), found {len(seqs)}")
        val, test = seqs[:len(seqs) // 2], seqs[len(seqs) // 2:]
    log(f"refiner eval: {len(val)} validation + {len(test)} test sequences ready "
        f"({time.monotonic() - t0:.0f} s)")

    val_teacher = score([s.teacher for s in val], val)["abs_rel"]
    ema_a, _ = _tune(val, val_teacher, _ema_candidates())
    bil_p, _ = _tune(val, val_teacher, _bilateral_candidates())
    log(f"refiner eval: validation-tuned EMA decay {ema_a}, bilateral (radius, sigma_t, "
        f"sigma_r) {bil_p} ({time.monotonic() - t0:.0f} s)")

    conf = [confidence_map(s.teacher, model.config.downsample, model.config.window_frames) for s in test]
    preds: dict[str, list[torch.Tensor]] = {
        "ground truth": [s.gt for s in test],
        "teacher (raw)": [s.teacher for s in test],
        f"EMA a={ema_a} (val-tuned)": [ema(s.teacher, ema_a) for s in test],
        f"bilateral r,st,sr={_fmt(bil_p)} (val-tuned)": [
            temporal_bilateral(s.teacher, *bil_p) for s in test],
    }
    t_ref = time.monotonic()
    preds["refiner"] = [refine_depth(model, s.teacher) for s in test]
    ref_s = time.monotonic() - t_ref
    preds["refiner, no confidence"] = [refine_depth(model, s.teacher, use_confidence=False) for s in test]
    params: dict[str, Any] = {"ema_val": ema_a, "bilateral_val": _jsonable(bil_p)}
    if oracle:
        test_teacher = score(preds["teacher (raw)"], test)["abs_rel"]
        ema_o, _ = _tune(test, test_teacher, _ema_candidates())
        bil_o, _ = _tune(test, test_teacher, _bilateral_candidates())
        preds[f"EMA a={ema_o} (test-oracle)"] = [ema(s.teacher, ema_o) for s in test]
        preds[f"bilateral r,st,sr={_fmt(bil_o)} (test-oracle)"] = [
            temporal_bilateral(s.teacher, *bil_o) for s in test]
        params.update(ema_oracle=ema_o, bilateral_oracle=_jsonable(bil_o))
    rows = {name: score(p, test, tae=True, conf=conf) for name, p in preds.items()}
    n_frames = sum(s.gt.shape[0] for s in test)
    results = {
        "rows": rows, "params": params,
        "bar": check_bar(rows),
        "setup": {"data": data, "test": [s.name for s in test], "val": [s.name for s in val],
                  "frames": n_frames, "size": list(test[0].gt.shape[1:]),
                  "refiner_ms_per_frame": round(1000 * ref_s / max(n_frames, 1), 2),
                  "seconds": round(time.monotonic() - t0, 1)},
    }
    log(f"refiner eval: done in {time.monotonic() - t0:.0f} s")
    return results


def _jsonable(p: tuple) -> list:
    """Bilateral parameters for JSON (infinity as the string "inf")."""
    return ["inf" if isinstance(v, float) and math.isinf(v) else v for v in p]


def _fmt(p: tuple) -> str:
    return ",".join("inf" if isinstance(v, float) and math.isinf(v) else f"{v:g}" for v in p)


def check_bar(rows: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The acceptance bar: flicker >= 30 % below the teacher and below every baseline row,
    AbsRel at most 1 % (relative) above the teacher's."""
    t, r = rows["teacher (raw)"], rows["refiner"]
    base = {k: v["flicker"] for k, v in rows.items() if k.startswith(("EMA", "bilateral"))}
    reduction = 1 - r["flicker"] / t["flicker"]
    absrel_change = r["abs_rel"] / t["abs_rel"] - 1
    checks = {
        "flicker_reduction_vs_teacher": reduction,
        "absrel_change_vs_teacher": absrel_change,
        "beats_baselines": all(r["flicker"] < f for f in base.values()),
    }
    checks["passed"] = bool(reduction >= FLICKER_REDUCTION and absrel_change <= ABSREL_TOLERANCE
                            and checks["beats_baselines"])
    return checks


def format_table(results: dict[str, Any]) -> str:
    """Markdown tables: overall metrics, then AbsRel / flicker by confidence stratum."""
    rows = results["rows"]
    has_tae = any("tae" in v for v in rows.values())
    head = ("| method | AbsRel | RMSE (m) | δ1 | flicker | flicker vs teacher |"
            + (" TAE |" if has_tae else ""))
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    tf = rows["teacher (raw)"]["flicker"]
    for name, v in rows.items():
        cells = [name, f"{v['abs_rel']:.4f}", f"{v['rmse']:.4f}", f"{v['delta1']:.4f}",
                 f"{v['flicker']:.5f}", f"{100 * (v['flicker'] / tf - 1):+.1f}%"]
        if has_tae:
            cells.append(f"{v['tae']:.4f}" if "tae" in v else "-")
        lines.append("| " + " | ".join(cells) + " |")
    strata = [n for n, _, _ in STRATA]
    share = rows["teacher (raw)"].get("strata", {})
    total = sum(share[n]["pixels"] for n in strata) if share else 0
    lines += ["", "By teacher confidence (AbsRel / flicker); pixel share: " + ", ".join(
        f"{n} {100 * share[n]['pixels'] / max(total, 1):.0f}%" for n in strata if n in share), "",
        "| method | " + " | ".join(f"{n} c∈[{lo:g},{min(hi, 1):g})" for n, lo, hi in STRATA) + " |",
        "|---|" + "---|" * len(strata)]
    for name, v in rows.items():
        st = v.get("strata", {})
        lines.append("| " + name + " | " + " | ".join(
            f"{st[n]['abs_rel']:.4f} / {st[n]['flicker']:.5f}" if n in st else "-" for n in strata) + " |")
    b = results["bar"]
    lines += ["", f"Bar: flicker {100 * b['flicker_reduction_vs_teacher']:.1f}% below the teacher "
              f"(need >= {100 * FLICKER_REDUCTION:.0f}%), AbsRel {100 * b['absrel_change_vs_teacher']:+.2f}% "
              f"vs teacher (need <= +{100 * ABSREL_TOLERANCE:.0f}%), below every baseline: "
              f"{'yes' if b['beats_baselines'] else 'no'} -> {'PASS' if b['passed'] else 'FAIL'}"]
    return "\n".join(lines)
