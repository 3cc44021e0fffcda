"""``vdp doctor``: CUDA, NVDEC/NVENC per codec, FFmpeg libraries, and why vdp would fall back."""
from __future__ import annotations

import argparse
import json


def _cmd_doctor(args: argparse.Namespace) -> int:
    from vdp.doctor import diagnose

    report = diagnose()
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    cuda = report["cuda"]
    print(f"torch        {cuda['torch']} (CUDA build: {cuda['torch_cuda_build'] or 'none'})")
    print(f"CUDA         {'yes: ' + ', '.join(cuda['devices']) if cuda['available'] else 'no: ' + cuda['reason']}")
    tc = report["torchcodec"]
    print(f"torchcodec   {tc['version']} ({'CUDA build' if tc['cuda_build'] else 'CPU-only build'})")
    print(f"ffmpeg CLI   {report['ffmpeg']['cli'] or 'not found'}")
    for lib in report["ffmpeg"]["loaded"]:
        print(f"  loaded     {lib}")
    for kind in ("nvdec", "nvenc"):
        for codec, s in report[kind].items():
            state = {True: "yes", False: "no", None: "unknown"}[s["available"]]
            print(f"{kind.upper():<6} {codec:<5} {state}{': ' + s['reason'] if 'reason' in s else ''}")
    for line in report["fallbacks"]:
        print(f"fallback     {line}")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``vdp doctor``."""
    p = sub.add_parser("doctor", help="check CUDA, NVDEC/NVENC and FFmpeg; say why vdp would fall back to the CPU")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_cmd_doctor)
