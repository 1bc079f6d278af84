"""Bad input to every command, many times, beside CPU-bound competitors: each run must end with exit
status 2 and exactly one line on stderr.

A run that printed its one-line error could still abort at exit (status 134, "terminate called
without an active exception") when a C++ library's thread was still finishing its work as the
interpreter shut down; CPU load widens that window. Prints the counts; exits 1 if any run ended
otherwise.

    python tests/exit_soak.py --rounds 20      # 20 rounds of every case: 220 runs
"""

from __future__ import annotations

import argparse
import collections
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

#: (name, argv after `jaxcal`): a bad input for every command, the file readers' paths first (the
#: CSV reader's threads were the abort's cause), each ending in a one-line error and exit 2.
CASES = [
    ("train --data, a NaN reading", ["train", "--data", "{d}/nan.csv"]),
    ("train --data, a word for a reading", ["train", "--data", "{d}/word.csv"]),
    ("fleet, a NaN reading", ["fleet", "{d}/nan_fleet.csv"]),
    ("fleet, Parquet with a NaN reading", ["fleet", "{d}/nan_fleet.parquet"]),
    ("predict --data, a NaN reading", ["predict", "--cal", "{d}/cal.json", "--data", "{d}/nan_t_u.csv"]),
    ("predict --cal, not a calibration", ["predict", "--cal", "{d}/nan.csv", "45"]),
    ("sweep --data, a NaN reading", ["sweep", "--data", "{d}/nan.csv", "--num", "2"]),
    ("parity --data, a NaN reading", ["parity", "--data", "{d}/nan.csv"]),
    ("graph, an unknown model", ["graph", "--model", "cubic"]),
    ("launch, a bad command", ["launch", "-n", "2", "--", "train", "--data", "{d}/nan.csv"]),
    ("train, a bad learning rate", ["train", "--lr", "-1"]),
]

CALIBRATION = ('{"format": "jaxcal-calibration/2", "params": [0.5, -17.0], "model": "linear", "scale": 1.0,'
               ' "loss": 0.0, "diverged": false, "diverged_at": null, "settings": {}, "data_fingerprint": "",'
               ' "jaxcal_version": ""}')


def write_inputs(folder: Path) -> None:
    """The bad tables the cases read."""
    (folder / "nan.csv").write_text("t_u,t_c\n35.7,0.5\nnan,14.0\n58.2,15.0\n")
    (folder / "word.csv").write_text("t_u,t_c\n35.7,0.5\nwarm,14.0\n58.2,15.0\n")
    (folder / "nan_fleet.csv").write_text("sensor,t_u,t_c\na,35.7,0.5\na,nan,14.0\na,58.2,15.0\n")
    (folder / "nan_t_u.csv").write_text("t_u\n35.7\nnan\n")
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"sensor": ["a", "a", "a"], "t_u": [35.7, float("nan"), 58.2],
                             "t_c": [0.5, 14.0, 15.0]}), folder / "nan_fleet.parquet")
    (folder / "cal.json").write_text(CALIBRATION)


@contextmanager
def competitors(count: int) -> Iterator[None]:
    """``count`` processes that keep a core busy until the block ends."""
    busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(count)]
    try:
        yield
    finally:
        for process in busy:
            process.kill()
            process.wait()


def run_case(argv: list[str], folder: Path) -> tuple[int, str]:
    """Exit status and stderr of ``jaxcal ARGV``, run as the console script runs."""
    done = subprocess.run([sys.executable, "-m", "jaxcal", *(a.format(d=folder) for a in argv)],
                          capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
    return done.returncode, done.stderr


def soak(rounds: int, busy: int) -> dict[str, collections.Counter]:
    """Every case ``rounds`` times beside ``busy`` competitors: per case, a count of each outcome
    (``"exit 2, one line"`` is the only good one)."""
    outcomes: dict[str, collections.Counter] = {name: collections.Counter() for name, _ in CASES}
    with tempfile.TemporaryDirectory() as temp, competitors(busy):
        folder = Path(temp)
        write_inputs(folder)
        for _ in range(rounds):
            for name, argv in CASES:
                status, err = run_case(argv, folder)
                good = status == 2 and err.count("\n") == 1 and err.endswith("\n")
                outcomes[name]["exit 2, one line" if good else f"exit {status}: {err.strip()[-200:]!r}"] += 1
    return outcomes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--busy", type=int, default=os.cpu_count() or 2, help="competing CPU-bound processes")
    args = parser.parse_args()
    outcomes = soak(args.rounds, args.busy)
    bad = 0
    for name, counts in outcomes.items():
        print(f"{name}: {dict(counts)}")
        bad += sum(n for outcome, n in counts.items() if outcome != "exit 2, one line")
    total = sum(sum(c.values()) for c in outcomes.values())
    print(f"{total} runs, {bad} ended otherwise than exit 2 with one line")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
