"""``vdp actors list|release``: vdp's named model actors on the Ray cluster."""
from __future__ import annotations

import argparse
import json
import time


def _cmd_list(args: argparse.Namespace) -> int:
    from vdp.engine.cluster import ensure_ray
    from vdp.engine.lifecycle import list_actors

    ensure_ray(args.address)
    rows = list_actors()
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        print("no vdp actors")
    now = time.time()
    for r in rows:
        idle = f"idle {now - r['last_used']:.0f} s" if r.get("last_used") else "busy or unreachable"
        gpus = r.get("resources", {}).get("GPU", 0)
        print(f"{r['name']:<48} {r.get('state', '?'):<8} GPUs {gpus:g}  {idle}"
              f"{'  releases after ' + format(r['idle_timeout_s'], 'g') + ' s idle' if r.get('idle_timeout_s') else ''}")
    return 0


def _cmd_release(args: argparse.Namespace) -> int:
    from vdp.engine.cluster import ensure_ray
    from vdp.engine.lifecycle import actor_names, release
    from vdp.errors import SpecError

    if not (args.names or args.stage or args.all):
        raise SpecError("give actor NAMEs (see `vdp actors list`), --stage STAGE or --all")
    ensure_ray(args.address)
    existing = actor_names()
    unknown = sorted(set(args.names) - set(existing))
    if unknown:
        raise SpecError(f"no vdp actor named {', '.join(unknown)} (see `vdp actors list`)")
    chosen = [n for n in existing if args.all or n in args.names
              or (args.stage and n.startswith(f"vdp:{args.stage}:"))]
    released = release(chosen)
    for name in released:
        print(f"released {name}")
    if not released:
        print("nothing to release")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``vdp actors list|release``."""
    p = sub.add_parser("actors", help="list or release vdp's model actors on the Ray cluster")
    asub = p.add_subparsers(dest="actors_command", required=True)
    ls = asub.add_parser("list", help="vdp actors, their GPUs and idle time")
    ls.add_argument("--json", action="store_true", help="print JSON")
    rel = asub.add_parser("release", help="kill vdp actors so their GPUs return to the cluster")
    rel.add_argument("names", nargs="*", help="actor names (as `vdp actors list` shows them)")
    rel.add_argument("--stage", choices=["depth", "refine", "matte", "stereo"], help="every actor of a stage")
    rel.add_argument("--all", action="store_true", help="every vdp actor")
    for q in (ls, rel):
        q.add_argument("--address", help="Ray cluster (default RAY_ADDRESS)")
    ls.set_defaults(func=_cmd_list)
    rel.set_defaults(func=_cmd_release)
