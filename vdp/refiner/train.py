"""Training the refiner: deterministic, resumable from the command line, CPU-friendly.

``vdp refiner train`` runs `train` with a `TrainConfig`; the defaults are the recipe of the
shipped ``refiner_v1`` checkpoint (``V0_RECIPE`` holds the overrides that give ``refiner_v0``). Every batch is a pure function of ``(seed, step)`` and the
clip pool is rendered from fixed seeds, so the same command on the same machine and thread
count gives the same checkpoint.
"""
from __future__ import annotations

import json
import math
import platform
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn.functional as F

from vdp.errors import SpecError
from vdp.models.refiner.config import PRESETS, RUN_WINDOWS, RefinerConfig, with_windows
from vdp.models.refiner.confidence import derive_confidence
from vdp.models.refiner.load import save_refiner
from vdp.models.refiner.model import Refiner
from vdp.refiner.losses import LossWeights, refiner_loss
from vdp.refiner.reprojection import reprojection_loss
from vdp.refiner.sampling import ClipPool, SamplingOptions, TrainBatch, make_batch
from vdp.refiner.splits import HELD_OUT_FAMILIES, TRAIN_FAMILIES, TRAIN_SEED_BASE
from vdp.refiner.windows import blend_weights, key_mask


@dataclass
class TrainConfig:
    """Everything that defines a training run (saved next to the checkpoint).

    Attributes:
        preset: Model size (`vdp.models.refiner.PRESETS`).
        seed: Seed of the initialisation and of every batch.
        steps: Optimiser steps.
        batch: Samples per step (each sample = two overlapping windows).
        lr: Peak learning rate (AdamW, linear warm-up then cosine decay).
        warmup_steps: Warm-up length.
        weight_decay: AdamW weight decay.
        grad_clip: Gradient norm clip.
        pool_clips: Procedural clips rendered for training (seeds from TRAIN_SEED_BASE).
        clip_frames: Frames per procedural clip.
        height: Training frame height.
        width: Training frame width.
        data: ``synthetic`` or a folder of RGB-D sequences (`vdp.refiner.rgbd` layout).
        no_confidence_every: Every k-th step runs without the confidence input (0: never).
        threads: torch CPU threads of the optimiser process.
        data_workers: Processes that build batches ahead of the optimiser (0: in-process).
        timeout_s: Stop (and still save) after this long; None: no limit.
        log_every: Steps between progress lines.
        loss: Loss weights.
        sampling: Sample patterns and augmentations (teacher families included).
        init: Start from this checkpoint's weights (fine-tuning; same preset) instead of a
            seeded random initialisation.
        select_every: Score the model every this many steps (and at the end) on fixed
            validation clips of the training families and save the best-scoring weights
            (`vdp.refiner.selection`: TAE, penalised by frames made worse); 0: save the last.
        run_windows: ``(frames, overlap)`` of the windows the saved checkpoint runs on
            (`vdp.models.refiner.config.with_windows`); None: the preset's, which training
            uses. v1 trains on pairs of 12-frame windows and runs on 32-frame windows every 24
            frames: lower TAE on most teacher families and flicker on all, at ~0.7x the cost per frame.
    """

    preset: str = "v1"
    seed: int = 0
    steps: int = 1500
    batch: int = 4
    lr: float = 3e-3
    warmup_steps: int = 30
    weight_decay: float = 1e-4
    grad_clip: float = 1.0
    pool_clips: int = 64
    clip_frames: int = 48
    height: int = 96
    width: int = 128
    data: str = "synthetic"
    no_confidence_every: int = 4
    threads: int = 1
    data_workers: int = 1
    timeout_s: float | None = None
    log_every: int = 10
    loss: LossWeights = field(default_factory=lambda: LossWeights(harm=2.0, reprojection=10.0))
    sampling: SamplingOptions = field(default_factory=lambda: SamplingOptions(families=TRAIN_FAMILIES))
    init: str | None = None
    select_every: int = 150
    run_windows: tuple[int, int] | None = RUN_WINDOWS

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


#: `TrainConfig` overrides of the first shipped refiner (depth only, v0's simulator only).
V0_RECIPE: dict[str, Any] = {"preset": "v0", "steps": 1000, "select_every": 0,
                             "loss": LossWeights(), "sampling": SamplingOptions(), "run_windows": None}


def build_pool(cfg: TrainConfig) -> ClipPool:
    """The training clips: procedural (rendered from fixed seeds) or RGB-D sequences."""
    if cfg.data == "synthetic":
        from vdp.refiner.synthetic import render_clip

        need = 2 * PRESETS[cfg.preset].window_frames + PRESETS[cfg.preset].stride_frames
        if cfg.clip_frames < need:
            raise SpecError(f"clip_frames must be at least {need}, got {cfg.clip_frames}")
        clips = [render_clip(TRAIN_SEED_BASE + i, frames=cfg.clip_frames, height=cfg.height,
                             width=cfg.width) for i in range(cfg.pool_clips)]
        return ClipPool(depth=[c.depth for c in clips], teacher=[None] * len(clips),
                        rgb=[c.rgb for c in clips] if PRESETS[cfg.preset].rgb else None,
                        intrinsics=[c.intrinsics for c in clips], poses=[c.poses for c in clips],
                        dynamic=[c.dynamic for c in clips])
    from vdp.refiner.rgbd import find_sequences, load_rgbd_sequence

    rgb = PRESETS[cfg.preset].rgb
    seqs = [load_rgbd_sequence(p, size=(cfg.height, cfg.width), load_rgb=rgb)
            for p in find_sequences(cfg.data)]
    no_rgb = [s.name for s in seqs if rgb and s.rgb is None]
    if no_rgb:
        raise SpecError(f"refiner preset {cfg.preset!r} reads RGB; these sequences have no rgb/ "
                        f"folder: {', '.join(no_rgb)}")
    need = 2 * PRESETS[cfg.preset].window_frames + PRESETS[cfg.preset].stride_frames
    short = [f"{s.name} ({s.depth.shape[0]})" for s in seqs if s.depth.shape[0] < need]
    if short:
        raise SpecError(f"training samples need {need} frames; too short: {', '.join(short)}")
    return ClipPool(depth=[s.depth for s in seqs], teacher=[s.teacher for s in seqs],
                    rgb=[s.rgb for s in seqs] if rgb else None,
                    intrinsics=[s.intrinsics for s in seqs], poses=[s.poses for s in seqs])


class _Batches(torch.utils.data.IterableDataset):
    """Batches ``start .. steps-1`` in order (each a pure function of seed and step)."""

    def __init__(self, pool: ClipPool, config: RefinerConfig, cfg: TrainConfig) -> None:
        super().__init__()
        self.pool, self.config, self.cfg = pool, config, cfg

    def __iter__(self):
        for step in range(self.cfg.steps):
            yield make_batch(self.pool, self.config, self.cfg.batch, self.cfg.seed, step,
                             self.cfg.sampling)


def _worker_init(_: int) -> None:
    torch.set_num_threads(1)


def batches(pool: ClipPool, config: RefinerConfig, cfg: TrainConfig):
    """Iterator over the run's batches, built by `data_workers` processes ahead of use."""
    data = _Batches(pool, config, cfg)
    if cfg.data_workers == 0:
        return iter(data)
    loader = torch.utils.data.DataLoader(data, batch_size=None, num_workers=cfg.data_workers,
                                         prefetch_factor=2, worker_init_fn=_worker_init)
    return iter(loader)


def blend_pair(rho: torch.Tensor, config: RefinerConfig) -> torch.Tensor:
    """Blend two overlapping windows per sample, as the stream does.

    Args:
        rho: Window residuals ``[B, 2, N, H, W]``.
        config: Window pattern.

    Returns:
        ``[B, N + stride, H, W]``.
    """
    n, s = config.window_frames, config.stride_frames
    w = blend_weights(config).to(rho)
    num = rho.new_zeros(rho.shape[0], n + s, *rho.shape[3:])
    den = rho.new_zeros(n + s)
    num[:, :n] += w[:, None, None] * rho[:, 0]
    num[:, s:] += w[:, None, None] * rho[:, 1]
    den[:n] += w
    den[s:] += w
    return num / den[:, None, None]


def train_step_loss(model: Refiner, batch: TrainBatch, weights: LossWeights,
                    use_confidence: bool) -> tuple[torch.Tensor, dict[str, float]]:
    """Forward the batch's windows, blend, and compute the loss and diagnostics."""
    cfg = model.config
    k, b = cfg.context_frames, batch.inp.shape[0]
    conf_low = derive_confidence(batch.windows, cfg.downsample)
    out = model(batch.windows, conf_low if use_confidence else None, key_mask(cfg), batch.rgb)
    size = batch.windows.shape[2:]
    rho = blend_pair(out.rho[:, k:].reshape(b, 2, cfg.window_frames, *size), cfg)
    conf = F.interpolate(conf_low[:, k:], size=size, mode="bilinear", align_corners=False)
    conf = blend_pair(conf.reshape(b, 2, cfg.window_frames, *size), cfg)
    sat = blend_pair(out.saturation[:, k:].reshape(b, 2, cfg.window_frames, *size), cfg)
    out_log = torch.log(batch.inp) + rho
    gt_log = torch.log(batch.gt.clamp_min(1e-6))
    loss, parts = refiner_loss(out_log, rho, torch.log(batch.teacher), conf, gt_log,
                               batch.valid, weights)
    if weights.reprojection and batch.geometry is not None:
        reproj = reprojection_loss(out_log, batch.gt, batch.valid, batch.geometry)
        loss = loss + weights.reprojection * reproj
        parts["reprojection"] = float(reproj.detach())
    with torch.no_grad():
        r = rho.detach().abs()
        parts.update(mean_abs_dD=float((torch.exp(r) - 1).mean()),
                     tiny_frac=float((r < 1e-3).float().mean()),
                     clamp_hits=float((sat.detach() > 0.95).float().mean()))
    return loss, parts


def _lr_at(cfg: TrainConfig, step: int) -> float:
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    p = (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)
    return cfg.lr * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * min(1.0, p))))


def train(cfg: TrainConfig, out: str | Path, *, log: Callable[[str], None] = print,
          command: str | None = None) -> dict[str, Any]:
    """Train a refiner and save ``out`` (.pt) plus its ``.json`` (config, recipe, log).

    Args:
        cfg: The recipe.
        out: Checkpoint path (``.pt``).
        log: Where progress lines go.
        command: The command line, recorded for reproduction.

    Returns:
        The metadata written to the sidecar JSON.
    """
    if cfg.preset not in PRESETS:
        raise SpecError(f"unknown refiner preset {cfg.preset!r}; known: {', '.join(PRESETS)}")
    if cfg.run_windows is not None:  # refused before training, not after it
        try:
            with_windows(PRESETS[cfg.preset], *cfg.run_windows)
        except ValueError as exc:
            raise SpecError(f"run_windows: {exc}") from None
    bad = [f for f in cfg.sampling.families if f not in TRAIN_FAMILIES]
    if bad or not cfg.sampling.families:
        held = [f for f in bad if f in HELD_OUT_FAMILIES]
        raise SpecError(f"training teacher families must be among {', '.join(TRAIN_FAMILIES)}; got "
                        f"{', '.join(bad) or 'none'}" + (" (held out for evaluation)" if held else ""))
    out = Path(out)
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    t0 = time.monotonic()
    pool = build_pool(cfg)
    t_data = time.monotonic() - t0
    log(f"refiner train: {len(pool.depth)} clips ready in {t_data:.1f} s; {cfg.steps} steps x "
        f"{cfg.batch} samples at {cfg.height}x{cfg.width}, {cfg.threads} threads")
    model = Refiner(PRESETS[cfg.preset])
    if cfg.init is not None:
        from vdp.models.refiner.load import load_refiner

        start = load_refiner(cfg.init)  # the same network; the windows it runs on may differ
        if with_windows(start.config, model.config.window_frames, model.config.overlap_frames) != model.config:
            raise SpecError(f"--init {cfg.init}: its config differs from preset {cfg.preset!r}")
        model.load_state_dict(start.state_dict())
        model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    history: list[dict[str, float]] = []
    window: list[dict[str, float]] = []
    stopped_early = False
    step = 0
    if cfg.data_workers > 1:
        raise SpecError("data_workers must be 0 or 1 (batches must arrive in step order)")
    stream = batches(pool, model.config, cfg)
    selector = _Selector(cfg, log) if cfg.select_every > 0 else None
    for step in range(cfg.steps):
        if cfg.timeout_s is not None and time.monotonic() - t0 > cfg.timeout_s:
            stopped_early = True
            log(f"refiner train: timeout after {time.monotonic() - t0:.0f} s at step {step}")
            break
        for g in opt.param_groups:
            g["lr"] = _lr_at(cfg, step)
        batch = next(stream)
        every = cfg.no_confidence_every
        use_conf = not (every and step % every == every - 1)
        loss, parts = train_step_loss(model, batch, cfg.loss, use_conf)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        window.append({"loss": float(loss.detach()), **parts})
        if (step + 1) % cfg.log_every == 0 or step + 1 == cfg.steps:
            avg = {k: sum(d[k] for d in window) / len(window) for k in window[0]}
            history.append({"step": step + 1, "elapsed_s": round(time.monotonic() - t0, 1), **avg})
            log(f"step {step + 1:5d}/{cfg.steps}  loss {avg['loss']:.5f}  gt {avg['gt']:.4f}  "
                f"temporal {avg['temporal']:.4f}  "
                + (f"reproj {avg['reprojection']:.4f}  " if "reprojection" in avg else "")
                + f"mean|dD|/D {100 * avg['mean_abs_dD']:.2f}%  "
                f"tiny {100 * avg['tiny_frac']:.1f}%  clamp {100 * avg['clamp_hits']:.2f}%  "
                f"lr {_lr_at(cfg, step):.2e}  {time.monotonic() - t0:.0f}s")
            window = []
        if selector is not None and (step + 1) % cfg.select_every == 0:
            selector.consider(model, step + 1)
    if selector is not None:
        last = step + 1 if not stopped_early else step
        if not selector.history or selector.history[-1]["step"] != last:
            selector.consider(model, last)
        model.load_state_dict(selector.best_state)
    elapsed = time.monotonic() - t0
    meta = {
        "name": out.stem,
        "train_config": cfg.to_dict(),
        "command": command,
        "steps_done": step + 1 if not stopped_early else step,
        "stopped_early": stopped_early,
        "train_seconds": round(elapsed, 1),
        "data_seconds": round(t_data, 1),
        "history": history,
        "selection": selector.summary() if selector is not None else None,
        "environment": {"torch": torch.__version__, "python": sys.version.split()[0],
                        "machine": platform.machine(), "threads": cfg.threads},
    }
    if cfg.run_windows is not None:
        model.config = with_windows(model.config, *cfg.run_windows)
    save_refiner(model.eval(), out, meta)
    log(f"refiner train: saved {out} ({out.stat().st_size / 1e6:.2f} MB) after {elapsed:.0f} s")
    return meta


class _Selector:
    """Keeps the best-scoring weights seen at the selection points of a run."""

    def __init__(self, cfg: TrainConfig, log: Callable[[str], None]) -> None:
        from vdp.refiner.selection import selection_set

        self.log = log
        self.every = cfg.select_every
        self.set = selection_set(tuple(cfg.sampling.families), frames=cfg.clip_frames,
                                 height=cfg.height, width=cfg.width)
        self.history: list[dict[str, Any]] = []
        self.best_state: dict[str, torch.Tensor] = {}
        self.best: dict[str, Any] | None = None

    def consider(self, model: Refiner, step: int) -> None:
        from vdp.refiner.selection import selection_score

        s = {"step": step, **selection_score(model, self.set)}
        self.history.append(s)
        if self.best is None or s["score"] < self.best["score"]:
            self.best = s
            self.best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        self.log(f"select {step:5d}  score {s['score']:.4f}  TAE {s['tae']:.5f}  AbsRel "
                 f"{s['abs_rel']:.4f}  worse {s['frames_worse']}/{s['frames']}  best at step "
                 f"{self.best['step']}")

    def summary(self) -> dict[str, Any]:
        return {"every": self.every, "teacher_tae": self.set.teacher_tae,
                "chosen_step": self.best["step"] if self.best else None, "history": self.history}


def load_metadata(path: str | Path) -> dict[str, Any]:
    """The sidecar JSON of a checkpoint (empty when there is none)."""
    p = Path(path).with_suffix(".json")
    return json.loads(p.read_text()) if p.is_file() else {}
