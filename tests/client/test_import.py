"""The SDK and the client CLI commands import on a machine without torch or Ray."""
from __future__ import annotations

import subprocess
import sys
import textwrap

BLOCKER = textwrap.dedent("""
    import sys

    class Blocker:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("torch", "torchcodec", "ray", "numpy"):
                raise ImportError(f"{name} is blocked in this test")

    sys.meta_path.insert(0, Blocker())
""")


def run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", BLOCKER + textwrap.dedent(code)],
                          capture_output=True, text=True, timeout=60)


def test_blocker_really_blocks():
    r = run("import torch")
    assert r.returncode != 0 and "blocked in this test" in r.stderr


def test_sdk_imports_without_torch_and_ray():
    r = run("""
        import vdp.client
        from vdp.client import Client, JobStatus, NotFoundError
        c = Client("http://127.0.0.1:9", token="t" * 16)
        c.close()
        assert not [m for m in sys.modules if m.split(".")[0] in ("torch", "ray", "numpy")]
        print("ok")
    """)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "ok"


def test_client_cli_commands_register_without_torch_and_ray():
    r = run("""
        import argparse
        from vdp.cli.service import add_parser
        p = argparse.ArgumentParser()
        add_parser(p.add_subparsers(dest="command"))
        args = p.parse_args(["status", "abc", "--url", "http://127.0.0.1:9"])
        assert args.func.__name__ == "_cmd_status"
        print("ok")
    """)
    assert r.returncode == 0, r.stderr
