"""Interrupts at random moments: ``jaxcal fleet ... --out FILE`` sent SIGINT or SIGTERM at a random
delay after its entry point started (its SIGTERM handler is visible in /proc), many times.

Every try must end cleanly: interrupted (exit 130 or 143, exactly one line on stderr, no output
or temporary file) or, when the signal came after the last byte, finished (the complete output, no
temporary file, and exit 0, or 130/143 with one line saying the output was already written).
Prints the counts; exits 1 if any try ended otherwise.

    python tests/interrupt_soak.py --tries 60
"""

from __future__ import annotations

import argparse
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from programs import handles_sigterm, wait_for

WORDS = {signal.SIGINT: (130, "interrupted"), signal.SIGTERM: (143, "terminated")}


def _default_sigint() -> None:
    # as from an interactive shell, even when this script runs as a background job (SIGINT ignored)
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def one_try(folder: Path, data: Path, delay: float, sig: signal.Signals) -> str:
    out = folder / "out.csv"
    process = subprocess.Popen([sys.executable, "-m", "jaxcal", "fleet", str(data), "--solver", "gd", "--epochs",
                                "20000", "--out", str(out), "--quiet"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, preexec_fn=_default_sigint)
    wait_for(lambda: handles_sigterm(process.pid), process)
    time.sleep(delay)  # the random moment this try samples
    process.send_signal(sig)
    _, err = process.communicate(timeout=300)
    left = sorted(p.name for p in folder.iterdir())
    status, word = WORDS[sig]
    if process.returncode == status and err == f"jaxcal: {word}; nothing was written\n" and left == []:
        return "interrupted"
    finished = err in ("", f"jaxcal: {word}; its output was already written\n")
    if process.returncode in (0, status) and finished and left == ["out.csv"] and out.read_text().count("\n") == 20001:
        out.unlink()
        return "finished"
    print(f"UNCLEAN after {delay:.3f} s, {sig.name}: exit {process.returncode}, stderr {err!r}, left {left}")
    for path in folder.iterdir():
        path.unlink()
    return "unclean"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tries", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "f.csv"
        data.write_text("sensor,t_u,t_c\n" + "".join(f"{s},{u},{0.5 * u - 17}\n" for s in range(20000)
                                                      for u in (30.0, 50.0, 70.0)))
        folder = Path(tmp) / "run"
        folder.mkdir()
        # a whole run takes a few seconds here: delays cover start-up, reading, compiling, fitting, writing
        ends = [one_try(folder, data, rng.uniform(0, 4.0), rng.choice(list(WORDS))) for _ in range(args.tries)]
    counts = {kind: ends.count(kind) for kind in ("interrupted", "finished", "unclean")}
    print(f"{args.tries} tries: {counts}")
    return 1 if counts["unclean"] else 0


if __name__ == "__main__":
    sys.exit(main())
