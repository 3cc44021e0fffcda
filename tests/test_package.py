"""Importing vdp: the huge-page allocator default, and a user's choice kept."""
from __future__ import annotations

import os
import subprocess
import sys

CODE = "import vdp, torch, os; print(os.environ['THP_MEM_ALLOC_ENABLE'])"


def run(env_value: str | None) -> str:
    env = {k: v for k, v in os.environ.items() if k != "THP_MEM_ALLOC_ENABLE"}
    if env_value is not None:
        env["THP_MEM_ALLOC_ENABLE"] = env_value
    return subprocess.run([sys.executable, "-c", CODE], env=env, capture_output=True, text=True,
                          timeout=120, check=True).stdout.strip()


def test_import_turns_on_huge_page_allocation_by_default():
    assert run(None) == "1"


def test_a_users_setting_is_kept():
    assert run("0") == "0"
