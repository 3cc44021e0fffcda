"""Byte-identity check: every preset's outputs on the sample clip, hashed into a JSON manifest.

Runs each preset (as `vdp.spec.list_presets` finds them) on the sample clip with synthetic
weights, on the CPU, in this process, plus one chunked run on Ray, and writes
``{run: {relative_output_path: sha256}}``. ``report.json`` and ``spec.json`` are hashed after
dropping what differs between runs of the same job (timings, host, pid, the input's path,
actor names); a ``.webm`` is hashed by its decoded RGBA frames (FFmpeg's WebM muxer writes
the time of writing into the file); ``.vdp/`` (the ledger, with timestamps) is left out.

    python benchmarks/preset_outputs.py --out hashes.json
    python benchmarks/preset_outputs.py --compare /work/notes/preset_hashes_base.json

With ``--compare OLD.json`` it prints every difference from the old manifest and exits 1 when
there is one (only the runs of this invocation are compared). ``--presets a,b`` and
``--max-frames N`` pick a smaller check (``--input-size 0`` keeps the presets' depth
size; the default, 140, keeps the whole check to a few minutes on 2 cores); ``--no-ray`` skips the chunked Ray run.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CLIP = ROOT / "tests" / "resources" / "media" / "sam2__05_default_juggle.mp4"
RAY_RUN = "ray-chunked:depth+matte"
#: Report fields that hold timings, the host or the run's placement: never compared.
_VOLATILE_REPORT = {"wall_seconds", "environment", "placement", "runner", "device"}
_VOLATILE_STAGE = {"busy_seconds", "elapsed_seconds", "fps", "eta_seconds"}


def preset_spec(name: str, clip: Path, max_frames: int, input_size: int | None = None, **extra: Any):
    """The preset as a job on `clip`: synthetic weights, CPU, the first `max_frames` frames
    (and depth at `input_size`, when given, to keep the check short)."""
    from vdp.spec import JobSpec, load_preset

    data = load_preset(name)
    stages = dict(data.get("stages") or {})
    for stage in ("depth", "matte"):
        if stages.get(stage) is not None:
            stages[stage] = {**stages[stage], "synthetic_weights": True}
    if input_size and stages.get("depth") is not None:
        stages["depth"] = {**stages["depth"], "input_size": input_size}
    data.update(stages=stages, input=str(clip), max_frames=max_frames)
    data["resources"] = {**data.get("resources", {}), "device": "cpu", "batch_frames": 8}
    data.update(extra)
    return JobSpec.parse(data)


def _normal_report(data: dict[str, Any], clip: Path) -> dict[str, Any]:
    out = {k: v for k, v in data.items() if k not in _VOLATILE_REPORT}
    out["input"] = {**out.get("input", {}), "path": "<input>"}
    out["stages"] = {n: {k: v for k, v in s.items() if k not in _VOLATILE_STAGE}
                     for n, s in out.get("stages", {}).items()}
    chunks = dict(out.get("chunks", {}))
    chunks.pop("runs", None)  # actor names and seconds
    out["chunks"] = chunks
    return json.loads(json.dumps(out).replace(str(clip), "<input>"))


def hash_outputs(out: Path, clip: Path) -> dict[str, str]:
    """sha256 of every file under `out` (JSON records normalised), keyed by relative path."""
    hashes = {}
    for path in sorted(p for p in out.rglob("*") if p.is_file()):
        rel = path.relative_to(out).as_posix()
        if rel.startswith(".vdp/"):
            continue
        data = path.read_bytes()
        if rel == "report.json":
            data = json.dumps(_normal_report(json.loads(data), clip), sort_keys=True).encode()
        elif path.suffix == ".webm":
            from vdp.io import read_webm_rgba

            data = read_webm_rgba(path).tobytes()
        elif rel == "spec.json":
            spec = json.loads(data)
            spec["input"] = "<input>"
            data = json.dumps(spec, sort_keys=True).encode()
        hashes[rel] = hashlib.sha256(data).hexdigest()
    return hashes


def run_all(presets: list[str], max_frames: int, input_size: int | None, ray_run: bool,
            work: Path) -> dict[str, dict[str, str]]:
    from vdp.engine.job import run_job

    clip = work / CLIP.name
    shutil.copy(CLIP, clip)
    manifest = {}
    for name in presets:
        out = work / name
        run_job(preset_spec(name, clip, max_frames, input_size), out, local=True)
        manifest[name] = hash_outputs(out, clip)
        print(f"{name}: {len(manifest[name])} files", flush=True)
    if ray_run:
        from vdp.engine.cluster import ensure_ray, shutdown_ray

        ensure_ray(num_cpus=2, num_gpus=0)
        try:
            out = work / "ray"
            chunking = {"enabled": True, "chunk_frames": 16, "overlap_frames": 4}
            frames = max(max_frames, 36)  # three chunks: two seams
            run_job(preset_spec("depth+matte", clip, frames, input_size, chunking=chunking), out)
            manifest[RAY_RUN] = hash_outputs(out, clip)
            print(f"{RAY_RUN}: {len(manifest[RAY_RUN])} files", flush=True)
        finally:
            shutdown_ray()
    return manifest


def compare(new: dict[str, dict[str, str]], old: dict[str, dict[str, str]]) -> list[str]:
    """One line per difference between the runs of `new` and the same runs in `old`."""
    diffs = []
    for run, files in new.items():
        if run not in old:
            diffs.append(f"{run}: not in the old manifest")
            continue
        for rel in sorted(set(files) | set(old[run])):
            a, b = old[run].get(rel), files.get(rel)
            if a != b:
                what = "missing now" if b is None else "new" if a is None else "content differs"
                diffs.append(f"{run}/{rel}: {what}")
    return diffs


def main(argv: list[str] | None = None) -> int:
    from vdp.spec import list_presets

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, help="write the manifest here")
    ap.add_argument("--compare", type=Path, help="old manifest: print differences, exit 1 on any")
    ap.add_argument("--presets", help="comma-separated presets (default: all)")
    ap.add_argument("--max-frames", type=int, default=12)
    ap.add_argument("--input-size", type=int, default=140,
                    help="depth input size (0: the preset's own; small keeps the check short)")
    ap.add_argument("--no-ray", action="store_true", help="skip the chunked Ray run")
    args = ap.parse_args(argv)
    presets = args.presets.split(",") if args.presets else list(list_presets())
    with tempfile.TemporaryDirectory(prefix="vdp_presets_") as tmp:
        manifest = run_all(presets, args.max_frames, args.input_size or None, not args.no_ray,
                           Path(tmp))
    if args.out:
        args.out.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    if args.compare:
        diffs = compare(manifest, json.loads(args.compare.read_text()))
        for line in diffs:
            print(line)
        print(f"{len(diffs)} difference(s) over {len(manifest)} run(s)")
        return 1 if diffs else 0
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
