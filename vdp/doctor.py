"""`vdp doctor`: what this machine can accelerate, and why vdp would fall back to the CPU.

Checks, each with the reason when it fails:

* CUDA: torch's build (``torch.version.cuda``), whether a GPU is visible, its name.
* Decoding on the GPU (NVDEC) per codec: TorchCodec's build must include CUDA, and a tiny clip
  of that codec (made with the ``ffmpeg`` CLI) must decode on ``cuda``.
* Encoding on the GPU (NVENC) per codec: whether FFmpeg lists the ``*_nvenc`` encoder and, with
  a GPU, whether it encodes one frame.
* The FFmpeg libraries TorchCodec loaded (``libavcodec`` etc. mapped into this process) and the
  ``ffmpeg`` CLI's version.
"""
from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

#: Codec -> (software encoder making the test clip, NVENC encoder name).
CODECS: dict[str, tuple[str, str]] = {
    "h264": ("libx264", "h264_nvenc"),
    "hevc": ("libx265", "hevc_nvenc"),
    "av1": ("libsvtav1", "av1_nvenc"),
    "vp9": ("libvpx-vp9", ""),
}


def cuda_status() -> dict[str, Any]:
    """torch's CUDA: ``available``, ``reason`` when not, build and devices."""
    import torch

    out: dict[str, Any] = {"torch": torch.__version__, "torch_cuda_build": torch.version.cuda}
    if torch.version.cuda is None:
        return {**out, "available": False,
                "reason": f"torch {torch.__version__} is a CPU-only build (install the CUDA wheel)"}
    try:
        count = torch.cuda.device_count()
    except Exception as exc:  # driver problems surface here
        return {**out, "available": False, "reason": f"the CUDA driver failed: {exc}"}
    if count == 0:
        return {**out, "available": False,
                "reason": "no GPU is visible (NVIDIA driver missing, CUDA_VISIBLE_DEVICES empty, or "
                          "the container was started without GPUs)"}
    names = [torch.cuda.get_device_name(i) for i in range(count)]
    return {**out, "available": True, "devices": names}


def torchcodec_status() -> dict[str, Any]:
    """TorchCodec's version and whether its build can decode on CUDA."""
    import torchcodec

    version = torchcodec.__version__
    cpu_only = version.endswith("+cpu")
    return {"version": version, "cuda_build": not cpu_only,
            **({"reason": f"torchcodec {version} is a CPU-only build (install the CUDA wheel)"}
               if cpu_only else {})}


def ffmpeg_encoders() -> set[str]:
    """Encoder names the ``ffmpeg`` CLI lists (empty without the CLI)."""
    exe = shutil.which("ffmpeg")
    if exe is None:
        return set()
    text = subprocess.run([exe, "-hide_banner", "-encoders"], capture_output=True, text=True,
                          timeout=30).stdout
    return {m.group(1) for m in re.finditer(r"^\s*[VAS][.FSXBD]{5}\s+(\S+)", text, re.M)}


def ffmpeg_libraries() -> dict[str, Any]:
    """The FFmpeg shared libraries mapped into this process (after TorchCodec has loaded them)
    and the ``ffmpeg`` CLI's version line."""
    from vdp.io import probe  # noqa: F401  loads TorchCodec and, through it, FFmpeg

    import torchcodec.decoders  # noqa: F401

    libs = set()
    try:
        for line in Path("/proc/self/maps").read_text().splitlines():
            path = line.split()[-1] if line.split() else ""
            if re.search(r"/lib(avcodec|avformat|avutil|swscale|swresample|avfilter|avdevice)\.so", path):
                libs.add(path)
    except OSError:
        pass
    exe = shutil.which("ffmpeg")
    cli = None
    if exe:
        first = subprocess.run([exe, "-version"], capture_output=True, text=True, timeout=30).stdout
        cli = first.splitlines()[0] if first else None
    return {"loaded": sorted(libs), "cli": cli}


def _make_clip(codec: str, encoder: str, path: Path) -> str | None:
    """Encode a 4-frame 64x64 clip with `encoder`; the error text, or None when it worked."""
    cmd = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
           "testsrc=size=64x64:rate=8", "-frames:v", "4", "-pix_fmt", "yuv420p", "-c:v", encoder, str(path)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    return None if proc.returncode == 0 else (proc.stderr.strip().splitlines() or ["failed"])[-1]


def nvdec_status(cuda: dict, codec_build: dict, encoders: set[str]) -> dict[str, dict]:
    """Per codec: whether a clip decodes on CUDA, else why not."""
    out = {}
    for codec, (sw, _) in CODECS.items():
        if not cuda["available"]:
            out[codec] = {"available": False, "reason": cuda["reason"]}
        elif not codec_build["cuda_build"]:
            out[codec] = {"available": False, "reason": codec_build["reason"]}
        elif sw not in encoders:
            out[codec] = {"available": None, "reason": f"untested: ffmpeg has no {sw} to make a test clip"}
        else:
            out[codec] = _try_nvdec(codec, sw)
    return out


def _try_nvdec(codec: str, encoder: str) -> dict:
    from torchcodec.decoders import VideoDecoder

    with tempfile.TemporaryDirectory() as tmp:
        clip = Path(tmp) / f"clip.{'webm' if codec == 'vp9' else 'mp4'}"
        err = _make_clip(codec, encoder, clip)
        if err:
            return {"available": None, "reason": f"untested: making the {codec} clip failed: {err}"}
        try:
            frame = VideoDecoder(str(clip), device="cuda")[0]
        except Exception as exc:
            return {"available": False, "reason": f"NVDEC could not decode {codec}: {exc}"}
        return {"available": frame.device.type == "cuda"}


def nvenc_status(cuda: dict, encoders: set[str]) -> dict[str, dict]:
    """Per codec: whether FFmpeg has the NVENC encoder and, with a GPU, whether it encodes."""
    out = {}
    for codec, (_, nv) in CODECS.items():
        if not nv:
            out[codec] = {"listed": False, "available": False, "reason": "NVENC has no encoder for this codec"}
        elif nv not in encoders:
            out[codec] = {"listed": False, "available": False, "reason": f"ffmpeg lists no {nv} encoder"}
        elif not cuda["available"]:
            out[codec] = {"listed": True, "available": False, "reason": cuda["reason"]}
        else:
            with tempfile.TemporaryDirectory() as tmp:
                err = _make_clip(codec, nv, Path(tmp) / "clip.mp4")
            out[codec] = {"listed": True, "available": err is None, **({"reason": err} if err else {})}
    return out


def fallbacks(report: dict) -> list[str]:
    """Sentences saying what vdp would do on the CPU instead of the GPU, and why."""
    lines = []
    if not report["cuda"]["available"]:
        lines.append(f"models: resources.device 'auto' runs on the CPU and 'cuda' fails, because "
                     f"{report['cuda']['reason']}")
    for codec, s in report["nvdec"].items():
        if s["available"] is False:
            lines.append(f"decoding {codec}: on the CPU, because {s['reason']}")
    return lines


def diagnose() -> dict[str, Any]:
    """Everything `vdp doctor` prints, as a dict."""
    cuda = cuda_status()
    codec_build = torchcodec_status()
    encoders = ffmpeg_encoders()
    report = {"cuda": cuda, "torchcodec": codec_build, "ffmpeg": ffmpeg_libraries(),
              "nvdec": nvdec_status(cuda, codec_build, encoders),
              "nvenc": nvenc_status(cuda, encoders)}
    report["fallbacks"] = fallbacks(report)
    return report
