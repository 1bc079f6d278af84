"""Files jaxcal writes: the modes a plain ``open()`` would give, atomic, nothing left on failure."""

from __future__ import annotations

import errno
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

import jaxcal._files
from jaxcal import Calibration, save_calibration
from jaxcal._files import write_atomic
from jaxcal.cli import main

CALIBRATION = Calibration((2.0, 1.0), "linear", 0.5, 0.0)


@pytest.fixture
def umask():
    """Sets the process's umask for the test, then restores it."""
    saved = os.umask(0o022)
    os.umask(saved)
    yield lambda mask: os.umask(mask)
    os.umask(saved)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize("mask", [0o022, 0o002, 0o077])
def test_a_new_file_gets_the_mode_open_would_give(tmp_path, umask, mask):
    umask(mask)
    with open(tmp_path / "plain", "w"):  # what the user's other tools would make
        pass
    write_atomic(tmp_path / "atomic.txt", "x")
    save_calibration(tmp_path / "cal.json", CALIBRATION)
    assert _mode(tmp_path / "atomic.txt") == _mode(tmp_path / "plain") == 0o666 & ~mask
    assert _mode(tmp_path / "cal.json") == 0o666 & ~mask


def test_a_replaced_file_keeps_its_mode(tmp_path, umask):
    umask(0o022)
    target = tmp_path / "cal.json"
    target.write_text("old")
    target.chmod(0o664)
    save_calibration(target, CALIBRATION)
    assert _mode(target) == 0o664
    assert target.read_text() != "old"


def test_every_cli_output_gets_ordinary_modes(tmp_path, umask):
    pytest.importorskip("matplotlib")
    umask(0o022)
    kept = tmp_path / "kept.json"  # an existing file the run replaces
    kept.write_text("old")
    kept.chmod(0o664)
    assert main(["train", "--epochs", "10", "--save", str(kept), "--plot", str(tmp_path / "fit.png")]) == 0
    (tmp_path / "f.csv").write_text("sensor,t_u,t_c\n" + "".join(f"s{s},{u},{0.5 * u - 17}\n"
                                                              for s in range(3) for u in (30.0, 50.0, 70.0)))
    assert main(["fleet", str(tmp_path / "f.csv"), "--solver", "gd", "--epochs", "10", "--out",
                 str(tmp_path / "fits.csv"), "--quiet"]) == 0
    assert _mode(kept) == 0o664
    assert _mode(tmp_path / "fit.png") == _mode(tmp_path / "fits.csv") == 0o644
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.csv", "fit.png", "fits.csv", "kept.json"]


def _half_then_disk_full(handle, data: bytes) -> None:
    handle.write(data[: len(data) // 2])
    handle.flush()
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def _save(target: Path) -> None:
    save_calibration(target, CALIBRATION, name="--out")


def _parquet(target: Path) -> None:
    """A table large enough that its Parquet bytes stream to the file in several pieces."""
    pytest.importorskip("pyarrow")
    import numpy as np

    from jaxcal.io import write_table

    write_table(target, {"t_c": np.random.default_rng(0).normal(size=300_000)}, name="--out")


@pytest.mark.parametrize(("name", "write"), [("cal.json", _save), ("big.parquet", _parquet)])
def test_a_write_that_fails_part_way_leaves_the_target_and_no_temporary_file(tmp_path, monkeypatch, name, write):
    target = tmp_path / name
    target.write_text("old")
    monkeypatch.setattr(jaxcal._files, "_write_all", _half_then_disk_full)
    with pytest.raises(ValueError, match="cannot write") as error:
        write(target)
    assert str(error.value) == f"--out: cannot write {target}: No space left on device"
    assert [p.name for p in tmp_path.iterdir()] == [name]
    assert target.read_text() == "old"


def test_a_parquet_table_streams_to_its_file(tmp_path, monkeypatch):
    """A large table's Parquet bytes go to the temporary file piece by piece, never whole in memory (the
    failure part-way: the test above)."""
    pytest.importorskip("pyarrow")
    import numpy as np
    import pyarrow.parquet as pq

    from jaxcal.io import write_table

    rng = np.random.default_rng(0)
    columns = {"t_u": rng.normal(size=300_000), "t_c": rng.normal(size=300_000)}
    pieces = []
    real = jaxcal._files._write_all
    monkeypatch.setattr(jaxcal._files, "_write_all",
                        lambda handle, data: (pieces.append(memoryview(data).nbytes), real(handle, data)))
    target = tmp_path / "big.parquet"
    write_table(target, columns)
    assert len(pieces) > 2
    assert max(pieces) < sum(pieces) / 2
    assert pq.read_table(target).column("t_c").to_numpy().tolist() == columns["t_c"].tolist()


def test_a_cli_write_that_fails_part_way_leaves_nothing_and_names_the_users_path(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(jaxcal._files, "_write_all", _half_then_disk_full)
    assert main(["train", "--epochs", "10", "--save", str(tmp_path / "cal.json")]) == 2
    err = capsys.readouterr()[1]
    assert err == f"jaxcal train: error: --save: cannot write {tmp_path / 'cal.json'}: No space left on device\n"
    assert list(tmp_path.iterdir()) == []


def test_an_error_after_one_output_is_staged_writes_none(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    (tmp_path / "plot.png").mkdir()  # the second output cannot be written
    assert main(["train", "--epochs", "10", "--save", str(tmp_path / "cal.json"),
                 "--plot", str(tmp_path / "plot.png")]) == 2
    assert "plot.png" in capsys.readouterr()[1]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plot.png"]


def test_the_librarys_writers_register_nothing_with_the_command_line():
    code = ("import sys, tempfile, os, jaxcal\n"
            "jaxcal.save_calibration(os.path.join(tempfile.mkdtemp(), 'c.json'), "
            "jaxcal.Calibration((2.0, 1.0), 'linear', 0.5, 0.0))\n"
            "print(sorted(m for m in sys.modules if m.startswith('jaxcal.cli')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_a_symlinked_output_is_written_through_the_link(tmp_path):
    real = tmp_path / "real.json"
    real.write_text("old")
    (tmp_path / "link.json").symlink_to(real)
    assert main(["train", "--epochs", "10", "--save", str(tmp_path / "link.json")]) == 0
    assert (tmp_path / "link.json").is_symlink()
    assert "jaxcal-calibration" in real.read_text()
    save_calibration(tmp_path / "link.json", CALIBRATION)
    assert (tmp_path / "link.json").is_symlink()


def test_fleet_refuses_to_write_over_its_input_table(tmp_path, capsys):
    table = tmp_path / "f.csv"
    table.write_text("sensor,t_u,t_c\n" + "".join(f"s{s},{u},{0.5 * u - 17}\n" for s in range(2) for u in (30.0, 70.0)))
    before = table.read_bytes()
    assert main(["fleet", str(table), "--solver", "gd", "--epochs", "10", "--out", str(table)]) == 2
    err = capsys.readouterr()[1]
    assert err.startswith("jaxcal fleet: error: --out: ")
    assert "is the input table" in err
    assert err.count("\n") == 1
    assert table.read_bytes() == before
