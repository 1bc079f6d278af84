"""float64: the x64 cases (x64_cases.py) in a fresh interpreter, and the CLI's --x64."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent


def test_float64_parity_cases_in_a_fresh_interpreter():
    pytest.importorskip("torch")
    # An outer parallel run's state must not leak into this inner run: its workers' variables
    # (pytest-benchmark, where installed, reads them as "xdist is active" and warns: an error here)
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYTEST_XDIST")}
    env["JAX_ENABLE_X64"] = "1"
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist", "-p", "no:benchmark",
         str(HERE / "x64_cases.py")],
        capture_output=True, text=True, env=env, cwd=HERE.parent,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert " passed" in done.stdout
    assert "skipped" not in done.stdout.splitlines()[-1]


def test_cli_x64_computes_in_float64():
    done = subprocess.run([sys.executable, "-m", "jaxcal", "train", "--x64", "--json"], capture_output=True,
                          text=True, check=True)
    result = json.loads(done.stdout)
    # float64: the final params carry more digits than any float32 can
    assert result["params"][0] != float(__import__("numpy").float32(result["params"][0]))
