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

from vdp.errors import SpecError
from vdp.models.refiner.confidence import derive_confidence
from vdp.models.refiner.load import load_refiner
from vdp.refiner.baselines import (BILATERAL_GRID, EMA_DECAYS, ROBUST_SCAN_GRID, ema,
                                   robust_scan_filter, temporal_bilateral)
from vdp.refiner.inference import refine_depth
from vdp.refiner.metrics import MetricSums, static_mask, tae_sums
from vdp.refiner.families import FAMILIES, UnknownFamilyError, simulate_family
from vdp.refiner.splits import (FAMILY_SEED_STEP, TEACHER_SEED_OFFSET, TEST_SEED_BASE,
                                VAL_SEED_BASE)
from vdp.refiner.teacher import simulate_teacher

#: Confidence strata (derived confidence of the teacher, see vdp.models.refiner.confidence;
#: about terciles on the procedural test split).
STRATA = (("low", 0.0, 0.45), ("mid", 0.45, 0.65), ("high", 0.65, 1.01))
#: AbsRel may be at most this much (relative) above the teacher's.
ABSREL_TOLERANCE = 0.01
#: Flicker must be at least this much (relative) below the teacher's.
FLICKER_REDUCTION = 0.30
#: Do-no-harm: a frame whose AbsRel exceeds the teacher's on that frame by more than this
#: (absolute) counts as made worse.
WORSE_FRAME_ABSREL = 0.005
#: Consistency bar: TAE at least this much (relative) below the best bilateral row's.
TAE_REDUCTION_VS_BILATERAL = 0.10
#: Row of `steady_scale_oracle` (uses ground truth; not a method, a bound on do-no-harm).
ORACLE_ROW = "oracle: teacher at one scale per sequence (uses GT)"


@dataclass
class EvalSequence:
    """One evaluation sequence (metric depth; ``rgb`` uint8 ``[T, 3, H, W]`` when known)."""

    name: str
    gt: torch.Tensor
    valid: torch.Tensor
    teacher: torch.Tensor
    dynamic: torch.Tensor | None = None
    intrinsics: torch.Tensor | None = None
    poses: torch.Tensor | None = None
    rgb: torch.Tensor | None = None


def synthetic_sequences(seed_base: int, count: int, *, frames: int = 60, height: int = 96,
                        width: int = 128, family: str = "classic") -> list[EvalSequence]:
    """Procedural sequences with seeds ``seed_base + i`` and simulated teachers of `family`."""
    from vdp.refiner.synthetic import render_clip

    if family not in FAMILIES:
        raise UnknownFamilyError(f"unknown teacher family {family!r}; available: {', '.join(FAMILIES)}")
    offset = TEACHER_SEED_OFFSET + FAMILIES.index(family) * FAMILY_SEED_STEP
    out = []
    for i in range(count):
        clip = render_clip(seed_base + i, frames=frames, height=height, width=width)
        teacher = simulate_family(family, clip.depth, seed_base + i + offset,
                                  dynamic=clip.dynamic, poses=clip.poses)
        name = f"proc-{seed_base + i}" + ("" if family == "classic" else f"-{family}")
        out.append(EvalSequence(name, clip.depth, clip.depth > 0, teacher,
                                clip.dynamic, clip.intrinsics, clip.poses, clip.rgb))
    return out


def rgbd_sequences(root: str | Path, *, frames: int | None = None,
                   size: tuple[int, int] | None = None) -> list[EvalSequence]:
    """RGB-D sequences (real teacher from ``teacher/`` or simulated from ground truth)."""
    from vdp.refiner.rgbd import fill_holes, find_sequences, load_rgbd_sequence

    out = []
    for i, path in enumerate(find_sequences(root)):
        s = load_rgbd_sequence(path, max_frames=frames, size=size, load_rgb=True)
        teacher = s.teacher if s.teacher is not None else \
            simulate_teacher(fill_holes(s.depth), TEST_SEED_BASE + i + TEACHER_SEED_OFFSET)
        out.append(EvalSequence(s.name, s.depth, s.depth > 0, teacher, None, s.intrinsics, s.poses,
                                s.rgb))
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


def frame_abs_rel(pred: torch.Tensor, gt: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """AbsRel of each frame, float64 ``[T]`` (NaN for a frame without valid ground truth)."""
    p, g = pred.double(), gt.double()
    err = torch.where(valid, (p - g).abs() / g.clamp_min(1e-12), torch.zeros_like(p))
    n = valid.flatten(1).sum(1).double()
    return err.flatten(1).sum(1) / n.where(n > 0, torch.full_like(n, float("nan")))


def sequence_aligned(pred: torch.Tensor, gt: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """`pred` times the one scale (per sequence) that makes its median log ratio to `gt` zero."""
    lr = (torch.log(gt.double()) - torch.log(pred.double().clamp_min(1e-12)))[valid]
    return pred * float(torch.exp(lr.median())) if lr.numel() else pred


def steady_scale_oracle(teacher: torch.Tensor, gt: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """The teacher with its frame-to-frame scale flicker removed exactly, using ground truth.

    Each frame is scaled so that its median log ratio to ground truth equals the sequence's;
    the sequence's own scale error stays, as it would for any method that sees no ground
    truth. It is the most a global-scale stabiliser can do, so the frames it makes worse than
    the teacher are the frames whose scale error happened to cancel the teacher's persistent
    bias: no temporally consistent output can keep them (the eval reports it for that).
    """
    lr = torch.log(gt.double().clamp_min(1e-12)) - torch.log(teacher.double().clamp_min(1e-12))
    if not bool(valid.any()):
        return teacher
    target = float(lr[valid].median())
    out = teacher.clone()
    for f in range(teacher.shape[0]):
        if bool(valid[f].any()):
            out[f] = teacher[f] * float(torch.exp(lr[f][valid[f]].median() - target))
    return out


def harm(preds: list[torch.Tensor], seqs: list[EvalSequence]) -> dict[str, Any]:
    """Per-frame accuracy against the teacher's on the same frame.

    Returns:
        ``frames`` (with ground truth), ``frames_worse`` (AbsRel up by > WORSE_FRAME_ABSREL),
        ``frames_worse_any`` (up at all, by > 1e-6), ``worst_delta`` (largest AbsRel increase,
        <= 0 when no frame got worse), ``worst_frame`` (``sequence:frame``, teacher -> method)
        and ``frames_worse_aligned``: the same count after both the method and the teacher
        are scaled by their own single per-sequence factor to ground truth (the persistent
        bias no temporal method can see is removed, what remains is frame-to-frame harm).
    """
    frames, worse, worse_any, worse_aligned = 0, 0, 0, 0
    worst, where = -math.inf, ""
    for p, s in zip(preds, seqs):
        mine, teach = frame_abs_rel(p, s.gt, s.valid), frame_abs_rel(s.teacher, s.gt, s.valid)
        mine_a = frame_abs_rel(sequence_aligned(p, s.gt, s.valid), s.gt, s.valid)
        teach_a = frame_abs_rel(sequence_aligned(s.teacher, s.gt, s.valid), s.gt, s.valid)
        ok_a = torch.isfinite(mine_a) & torch.isfinite(teach_a)
        worse_aligned += int(((mine_a - teach_a)[ok_a] > WORSE_FRAME_ABSREL).sum())
        ok = torch.isfinite(mine) & torch.isfinite(teach)
        delta = (mine - teach)[ok]
        idx = torch.nonzero(ok).flatten()
        frames += int(ok.sum())
        worse += int((delta > WORSE_FRAME_ABSREL).sum())
        worse_any += int((delta > 1e-6).sum())
        if delta.numel() and float(delta.max()) > worst:
            j = int(delta.argmax())
            f = int(idx[j])
            worst = float(delta[j])
            where = f"{s.name}:{f} ({float(teach[f]):.4f} -> {float(mine[f]):.4f})"
    return {"frames": frames, "frames_worse": worse, "frames_worse_any": worse_any,
            "worst_delta": worst if frames else 0.0, "worst_frame": where,
            "frames_worse_aligned": worse_aligned}


def score(preds: list[torch.Tensor], seqs: list[EvalSequence], *, tae: bool = False,
          conf: list[torch.Tensor] | None = None, per_frame: bool = False) -> dict[str, Any]:
    """Pooled metrics of predictions (one per sequence); `per_frame` adds `harm`'s counts."""
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
    out = m.result()
    if per_frame:
        out["per_frame"] = harm(preds, seqs)
    return out


def _tune(seqs: list[EvalSequence], teacher_absrel: float,
          candidates: list[tuple[Any, Callable[[torch.Tensor], torch.Tensor]]]) -> tuple[Any, dict]:
    """The candidate with the lowest flicker whose AbsRel meets the bar (else lowest AbsRel)."""
    scored = [(param, score([fn(s.teacher) for s in seqs], seqs)) for param, fn in candidates]
    ok = [x for x in scored if x[1]["abs_rel"] <= teacher_absrel * (1 + ABSREL_TOLERANCE)]
    return min(ok, key=lambda x: x[1]["flicker"]) if ok else min(scored, key=lambda x: x[1]["abs_rel"])


@dataclass(frozen=True)
class _Baseline:
    """A classic filter the refiner is compared with: its parameter grid and how to run it."""

    key: str                                      # "<key>_val" / "<key>_oracle" in the params
    tuned: str                                    # what the tuning log line calls its parameters
    label: Callable[[Any], str]                   # row name, without " (val-tuned)"
    grid: tuple
    run: Callable[[torch.Tensor, Any], torch.Tensor]

    def candidates(self) -> list[tuple[Any, Callable[[torch.Tensor], torch.Tensor]]]:
        return [(p, lambda d, p=p: self.run(d, p)) for p in self.grid]


BASELINES = (
    _Baseline("ema", "EMA decay", lambda a: f"EMA a={a}", EMA_DECAYS, ema),
    _Baseline("bilateral", "bilateral (radius, sigma_t, sigma_r)",
              lambda p: f"bilateral r,st,sr={_fmt(p)}", BILATERAL_GRID,
              lambda d, p: temporal_bilateral(d, *p)),
    _Baseline("robust_scan", "robust scan (memory, sigma)", lambda p: f"robust scan m,s={_fmt(p)}",
              ROBUST_SCAN_GRID, lambda d, p: robust_scan_filter(d, *p)),
)


def evaluate(checkpoint: str | Path | None = None, *, data: str = "synthetic", test_count: int = 8,
             val_count: int = 4, frames: int = 60, height: int = 96, width: int = 128,
             oracle: bool = True, family: str = "classic",
             compare: dict[str, str | Path] | None = None,
             max_frame_shift: float | None = None,
             log: Callable[[str], None] = print) -> dict[str, Any]:
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
        family: Teacher family of procedural sequences (`vdp.refiner.families`).
        compare: More checkpoints to report, as rows ``refiner <name>``.
        max_frame_shift: Do-no-harm frame-shift limit of the refiner rows
            (`vdp.refiner.windows`); when set, a row without the limit is added for comparison.
        log: Progress lines.

    Returns:
        ``{"rows": {method: metrics}, "params": {...}, "bar": {...}, "setup": {...}}``.
    """
    t0 = time.monotonic()
    model = load_refiner(checkpoint)
    if data == "synthetic":
        kw = {"frames": frames, "height": height, "width": width, "family": family}
        val = synthetic_sequences(VAL_SEED_BASE, val_count, **kw)
        test = synthetic_sequences(TEST_SEED_BASE, test_count, **kw)
    else:
        seqs = rgbd_sequences(data, frames=frames, size=(height, width))
        if len(seqs) < 2:
            raise SpecError(f"{data}: need at least 2 sequences (validation + test), found {len(seqs)}")
        no_rgb = [s.name for s in seqs if s.rgb is None]
        if model.config.rgb and no_rgb:
            raise SpecError(f"this refiner reads RGB; these sequences have no rgb/ folder: "
                             f"{', '.join(no_rgb)}")
        val, test = seqs[:len(seqs) // 2], seqs[len(seqs) // 2:]
    log(f"refiner eval: {len(val)} validation + {len(test)} test sequences ready "
        f"({time.monotonic() - t0:.0f} s)")

    val_teacher = score([s.teacher for s in val], val)["abs_rel"]
    tuned = {b: _tune(val, val_teacher, b.candidates())[0] for b in BASELINES}
    log("refiner eval: validation-tuned " + ", ".join(f"{b.tuned} {p}" for b, p in tuned.items())
        + f" ({time.monotonic() - t0:.0f} s)")

    conf = [confidence_map(s.teacher, model.config.downsample, model.config.window_frames) for s in test]
    preds: dict[str, list[torch.Tensor]] = {
        "ground truth": [s.gt for s in test],
        "teacher (raw)": [s.teacher for s in test],
        ORACLE_ROW: [steady_scale_oracle(s.teacher, s.gt, s.valid) for s in test],
    }
    for b, p in tuned.items():
        preds[f"{b.label(p)} (val-tuned)"] = [b.run(s.teacher, p) for s in test]
    lim = {"max_frame_shift": max_frame_shift}
    t_ref = time.monotonic()
    preds["refiner"] = [refine_depth(model, s.teacher, rgb=s.rgb, **lim) for s in test]
    ref_s = time.monotonic() - t_ref
    preds["refiner, no confidence"] = [refine_depth(model, s.teacher, rgb=s.rgb, use_confidence=False,
                                                    **lim) for s in test]
    if max_frame_shift is not None:
        preds["refiner, no frame-shift limit"] = [refine_depth(model, s.teacher, rgb=s.rgb)
                                                  for s in test]
    for name, path in (compare or {}).items():
        other = load_refiner(path)
        preds[f"refiner {name}"] = [refine_depth(other, s.teacher, rgb=s.rgb, **lim) for s in test]
    params: dict[str, Any] = {f"{b.key}_val": _jsonable(p) for b, p in tuned.items()}
    if oracle:
        test_teacher = score(preds["teacher (raw)"], test)["abs_rel"]
        for b in BASELINES:
            p = _tune(test, test_teacher, b.candidates())[0]
            preds[f"{b.label(p)} (test-oracle)"] = [b.run(s.teacher, p) for s in test]
            params[f"{b.key}_oracle"] = _jsonable(p)
    rows = {name: score(p, test, tae=True, conf=conf, per_frame=True) for name, p in preds.items()}
    n_frames = sum(s.gt.shape[0] for s in test)
    results = {
        "rows": rows, "params": params,
        "bar": check_bar(rows),
        "setup": {"data": data, "family": family if data == "synthetic" else None, "test": [s.name for s in test], "val": [s.name for s in val],
                  "frames": n_frames, "size": list(test[0].gt.shape[1:]),
                  "max_frame_shift": max_frame_shift,
                  "refiner_ms_per_frame": round(1000 * ref_s / max(n_frames, 1), 2),
                  "seconds": round(time.monotonic() - t0, 1)},
    }
    log(f"refiner eval: done in {time.monotonic() - t0:.0f} s")
    return results


def _jsonable(p: Any) -> Any:
    """Baseline parameters for JSON: a scalar as it is, a tuple as a list (infinity as "inf")."""
    if not isinstance(p, tuple):
        return p
    return ["inf" if isinstance(v, float) and math.isinf(v) else v for v in p]


def _fmt(p: tuple) -> str:
    return ",".join("inf" if isinstance(v, float) and math.isinf(v) else f"{v:g}" for v in p)


def _below(reduction: float) -> str:
    """``"12.3% below"`` for a positive reduction, ``"4.5% above"`` for a negative one."""
    return f"{100 * abs(reduction):.1f}% {'below' if reduction >= 0 else 'above'}"


def check_bar(rows: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The acceptance bars of the ``refiner`` row.

    * ``passed`` (v0 bar): flicker >= 30 % below the teacher and below every baseline row (EMA,
      bilateral, robust scan), AbsRel at most 1 % (relative) above the teacher's.
    * ``consistency_passed`` (issue 22 bar, when the rows carry TAE and per-frame counts): TAE
      at least 10 % below the best bilateral row's (lowest TAE) at the same or better AbsRel,
      and no frame worse than the teacher by more than WORSE_FRAME_ABSREL.
    * ``consistency_passed_aligned``: the same with frames counted after each method and the
      teacher are scaled by one factor per sequence (`harm`), i.e. without the frames that no
      scale-consistent output can keep (the oracle row shows how many those are).
    * ``tae_reduction_vs_best_robust_scan`` (information): the same TAE comparison against the
      best robust-scan row, the refiner's own smoother without its network.
    """
    t, r = rows["teacher (raw)"], rows["refiner"]
    base = {k: v["flicker"] for k, v in rows.items()
            if k.startswith(("EMA", "bilateral", "robust scan"))}
    reduction = 1 - r["flicker"] / t["flicker"]
    absrel_change = r["abs_rel"] / t["abs_rel"] - 1
    checks: dict[str, Any] = {
        "flicker_reduction_vs_teacher": reduction,
        "absrel_change_vs_teacher": absrel_change,
        "beats_baselines": all(r["flicker"] < f for f in base.values()),
    }
    checks["passed"] = bool(reduction >= FLICKER_REDUCTION and absrel_change <= ABSREL_TOLERANCE
                            and checks["beats_baselines"])
    bil = [v for k, v in rows.items() if k.startswith("bilateral") and "tae" in v]
    if "tae" in r and bil and "per_frame" in r:
        best = min(bil, key=lambda v: v["tae"])
        checks["tae_reduction_vs_best_bilateral"] = 1 - r["tae"] / best["tae"]
        checks["absrel_vs_best_bilateral"] = r["abs_rel"] - best["abs_rel"]
        checks["frames_worse"] = r["per_frame"]["frames_worse"]
        checks["frames_worse_aligned"] = r["per_frame"]["frames_worse_aligned"]
        checks["worst_frame_delta"] = r["per_frame"]["worst_delta"]
        consistent = bool(checks["tae_reduction_vs_best_bilateral"] >= TAE_REDUCTION_VS_BILATERAL
                          and r["abs_rel"] <= best["abs_rel"])
        checks["consistency_passed"] = consistent and checks["frames_worse"] == 0
        checks["consistency_passed_aligned"] = consistent and checks["frames_worse_aligned"] == 0
        scans = [v for k, v in rows.items() if k.startswith("robust scan") and "tae" in v]
        if scans:
            checks["tae_reduction_vs_best_robust_scan"] = 1 - r["tae"] / min(v["tae"] for v in scans)
        if ORACLE_ROW in rows and "per_frame" in rows[ORACLE_ROW]:
            checks["oracle_frames_worse"] = rows[ORACLE_ROW]["per_frame"]["frames_worse"]
    return checks


def format_table(results: dict[str, Any]) -> str:
    """Markdown tables: overall metrics, then AbsRel / flicker by confidence stratum."""
    rows = results["rows"]
    has_tae = any("tae" in v for v in rows.values())
    has_pf = any("per_frame" in v for v in rows.values())
    head = ("| method | AbsRel | RMSE (m) | δ1 | flicker | flicker vs teacher |"
            + (" TAE |" if has_tae else "")
            + (f" frames worse >{WORSE_FRAME_ABSREL:g} | worst Δ AbsRel | worse, seq-scale aligned |"
               if has_pf else ""))
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    tf = rows["teacher (raw)"]["flicker"]
    for name, v in rows.items():
        cells = [name, f"{v['abs_rel']:.4f}", f"{v['rmse']:.4f}", f"{v['delta1']:.4f}",
                 f"{v['flicker']:.5f}", f"{100 * (v['flicker'] / tf - 1):+.1f}%"]
        if has_tae:
            cells.append(f"{v['tae']:.4f}" if "tae" in v else "-")
        if has_pf:
            pf = v.get("per_frame")
            cells += ([f"{pf['frames_worse']}/{pf['frames']}", f"{pf['worst_delta']:+.4f}",
                       f"{pf['frames_worse_aligned']}/{pf['frames']}"] if pf else ["-", "-", "-"])
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
    if "consistency_passed" in b:
        worst = rows["refiner"]["per_frame"]["worst_frame"] or "-"
        lines += [f"Consistency bar: TAE {_below(b['tae_reduction_vs_best_bilateral'])} the "
                  f"best bilateral (need >= {100 * TAE_REDUCTION_VS_BILATERAL:.0f}% below), AbsRel "
                  f"{b['absrel_vs_best_bilateral']:+.4f} vs it (need <= 0), frames worse than the "
                  f"teacher by > {WORSE_FRAME_ABSREL:g}: {b['frames_worse']} (need 0; worst "
                  f"{b['worst_frame_delta']:+.4f} at {worst}) -> "
                  f"{'PASS' if b['consistency_passed'] else 'FAIL'}; counted after one scale per "
                  f"sequence: {b['frames_worse_aligned']} -> "
                  f"{'PASS' if b['consistency_passed_aligned'] else 'FAIL'}"]
        if "tae_reduction_vs_best_robust_scan" in b:
            lines += [f"TAE {_below(b['tae_reduction_vs_best_robust_scan'])} the best robust scan "
                      f"(the refiner's smoother without its network)"]
        if "oracle_frames_worse" in b:
            lines += [f"Frames that the ground-truth steady-scale oracle makes worse by > "
                      f"{WORSE_FRAME_ABSREL:g}: {b['oracle_frames_worse']} (no scale-consistent "
                      f"output keeps those)"]
    return "\n".join(lines)
