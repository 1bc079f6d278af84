"""float64: the x64 cases (x64_cases.py) in a fresh interpreter, and the CLI's --x64."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from programs import pytest_with_x64

HERE = Path(__file__).parent


def test_float64_parity_cases_in_a_fresh_interpreter():
    pytest.importorskip("torch")
    done = pytest_with_x64(str(HERE / "x64_cases.py"))
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert " passed" in done.stdout
    assert "skipped" not in done.stdout.splitlines()[-1]


def test_cli_x64_computes_in_float64():
    done = subprocess.run([sys.executable, "-m", "jaxcal", "train", "--x64", "--json"], capture_output=True,
                          text=True, check=True)
    result = json.loads(done.stdout)
    # float64: the final params carry more digits than any float32 can
    assert result["params"][0] != float(__import__("numpy").float32(result["params"][0]))
