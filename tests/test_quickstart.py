"""README's first command: the quickstart compiles the bundled model, runs it and matches the interpreter."""

from __future__ import annotations

import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_quickstart_builds_runs_and_matches(tmp_path):
    env = {**os.environ, "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")}
    done = subprocess.run(
        [sys.executable, os.path.join(ROOT, "examples", "quickstart.py")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "max abs diff" in done.stdout and "MISMATCH" not in done.stderr
    assert sorted(os.listdir(tmp_path / "build")) == ["model.h", "tiny_cnn.so"]
