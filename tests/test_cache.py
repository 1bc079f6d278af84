"""The command line's persistent compilation cache: a second run loads its programs instead of
compiling them, `--no-cache` and JAXCAL_NO_CACHE turn it off, and the library never turns it on.

Each run is a process of its own (the cache is a start-up choice), watched through JAX's own
monitoring events: a cache hit is an observable event, not a guess from timings."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

# Runs the command line in this interpreter and reports what JAX's compilation cache did.
WATCH = """
import json, sys
import jax.monitoring
events = []
jax.monitoring.register_event_listener(lambda event, **kwargs: events.append(event))
from jaxcal.cli import main
status = main(sys.argv[1:])
print(json.dumps({"status": status, "hits": events.count("/jax/compilation_cache/cache_hits"),
                  "misses": events.count("/jax/compilation_cache/cache_misses")}))
"""


def _run(argv: list[str], cache: Path | None, **env: str) -> tuple[dict, str, str]:
    environment = {k: v for k, v in os.environ.items()
                   if k not in ("JAXCAL_NO_CACHE", "JAXCAL_CACHE_DIR", "JAX_COMPILATION_CACHE_DIR")}
    environment.update(env)
    if cache is not None:
        environment["JAXCAL_CACHE_DIR"] = str(cache)
    done = subprocess.run([sys.executable, "-c", WATCH, *argv], capture_output=True, text=True, env=environment,
                          timeout=300, check=False)
    *printed, report = done.stdout.splitlines()
    return json.loads(report), "\n".join(printed), done.stderr


TRAIN = ["train", "--epochs", "50", "--log-every", "25"]


def test_a_second_run_loads_its_programs_from_the_cache(tmp_path):
    first, log, err = _run(TRAIN, tmp_path / "cache")
    assert first["status"] == 0, err
    assert first["hits"] == 0
    assert first["misses"] >= 1
    assert list((tmp_path / "cache").iterdir())  # the compiled programs, written
    second, again, err = _run(TRAIN, tmp_path / "cache")
    assert second["status"] == 0, err
    assert second["hits"] >= first["misses"]  # every program of the first run, loaded
    assert second["misses"] == 0
    assert again == log  # the same run
    assert err == ""


def test_a_fleet_reuses_its_programs_too(tmp_path):
    import numpy as np

    from jaxcal import data
    from jaxcal.io import write_table

    write_table(tmp_path / "three.npz", {"sensor": np.repeat([1, 2, 3], 11), "t_u": np.tile(data.t_u, 3),
                                         "t_c": np.tile(data.t_c, 3)})
    argv = ["fleet", str(tmp_path / "three.npz"), "--solver", "gd", "--epochs", "100", "--json"]
    first, out, _ = _run(argv, tmp_path / "cache")
    second, again, err = _run(argv, tmp_path / "cache")
    assert second["hits"] >= first["misses"] >= 1
    assert second["misses"] == 0
    assert again == out
    assert err == ""


@pytest.mark.parametrize("off", [{"flag": "--no-cache"}, {"JAXCAL_NO_CACHE": "1"}])
def test_the_cache_can_be_turned_off(tmp_path, off):
    flag = [off.pop("flag")] if "flag" in off else []
    report, _, err = _run([*TRAIN, *flag], tmp_path / "cache", **off)
    assert report["status"] == 0, err
    assert report["hits"] == report["misses"] == 0  # JAX never looked
    assert not (tmp_path / "cache").exists() or not list((tmp_path / "cache").iterdir())


def test_an_unwritable_cache_folder_is_no_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    report, log, err = _run(TRAIN, blocker / "cache")  # cannot be created: below a file
    assert report["status"] == 0
    assert "Epoch 50" in log
    assert err == ""


def test_the_library_never_turns_the_cache_on(tmp_path):
    script = ("import jax, jaxcal; from jaxcal import data; "
              "jaxcal.training_loop(10, 1e-2, [1.0, 0.0], data.t_un, data.t_c); "
              "print(jax.config.jax_compilation_cache_dir)")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JAXCAL_", "JAX_COMPILATION"))}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, check=True)
    assert done.stdout.strip() == "None"
