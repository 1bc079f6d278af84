"""The installed package is what ``import jaxcal`` finds, wherever Python is started."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_python_started_beside_a_clone_named_jaxcal_imports_the_package(tmp_path):
    # `git clone ... jaxcal` then Python in the folder holding it: the clone's folder must not be
    # imported as a namespace package (a flat layout made `jaxcal.training_loop` an AttributeError).
    (tmp_path / "jaxcal").symlink_to(ROOT, target_is_directory=True)
    code = "import jaxcal; print(jaxcal.__file__ is not None, callable(jaxcal.training_loop))"
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["True", "True"]
