"""Exit statuses under load: bad input ends with exit 2 and one line, every time, on every command.

The soak itself is ``tests/exit_soak.py`` (run it with ``--rounds 20`` for 220 runs); here a few
rounds of it run in the suite.
"""

from __future__ import annotations

import pytest
from exit_soak import CASES, soak


@pytest.mark.slow
def test_bad_input_to_every_command_exits_2_with_one_line_under_cpu_load():
    # Before the fix, about one run in 15-20 of `train --data` with a NaN reading aborted with 134
    # after its one-line error (a pyarrow reader thread still releasing Python memory at exit).
    outcomes = soak(rounds=1, busy=1)
    assert {name: dict(counts) for name, counts in outcomes.items()} == {
        name: {"exit 2, one line": 1} for name, _ in CASES}
