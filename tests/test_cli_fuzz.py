"""Property: whatever the arguments and files, the CLI exits 0, 1 or 2, prints no traceback and no
Python warning, and leaves no partial file.

Argument lists are drawn from the real flags of every subcommand (read off the argparse parsers)
with odd values: huge, tiny, negative, zero, NaN, infinities, non-numeric, empty and non-ASCII
text, and files with random contents. CI replays the same examples every run (the ``ci``
profile in conftest.py); ``JAXCAL_FUZZ_EXAMPLES=2000 pytest tests/test_cli_fuzz.py`` explores more.

Left out, because they change the process or reach beyond it rather than the computation:
``--x64`` and ``--devices`` (start-up choices, tested in their own processes), the multi-process
flags (they join or wait for a cluster), and ``launch`` (it starts processes; its bad input is in
the catalogue of test_trust.py).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jaxcal.cli import build_parser, main

EXCLUDED_FLAGS = {"--x64", "--devices", "--coordinator", "--num-processes", "--process-id", "--timeout", "--help",
                  "-h", "--version"}
EXCLUDED_COMMANDS = {"launch"}
# work per example stays small: epochs, learning rates and sweep sizes that are valid are small
INTEGER_FLAGS = {"--epochs": 300, "--log-every": 300, "--num": 12, "--split-seed": 10**9}
OUTPUT_FLAGS = {"--save", "--plot", "--out"}
FILE_FLAGS = {"--data", "--cal"}
CHOICES = {"--optimizer": ["plain", "sgd", "adam"], "--model": ["linear", "quadratic"],
           "--gradient": ["autograd", "analytic", "finite-difference"], "--solver": ["auto", "ls", "lm", "gd"]}

# odd values by kind; each kind is drawn as often as any other
ODD_KINDS = {
    "huge": ["1e39", "-1e39", "1e308", "1e400", "3.4028236e38", "99999999999999999999", "2147483648"],
    "tiny": ["1e-50", "1e-320", "1e-45", "-1e-50"],
    "negative": ["-1", "-0", "-2147483649", "-0.5"],
    "zero": ["0", "0.0"],
    "nan": ["nan", "-nan", "NaN"],
    "infinite": ["inf", "-inf", "Infinity"],
    "text": ["abc", "1e", "--", "0x10", "1_000", "1,5", "True", "1.5", "2 3"],
    "empty": ["", " ", "\t"],
    "unicode": ["\uff11\uff12", "\u221e", "\u00f1", "\u0663", "\U0001f600"],  # fullwidth 12, infinity, n~, Arabic 3
}
ODD = st.sampled_from(list(ODD_KINDS.values())).flatmap(st.sampled_from)
ODD_TEXT = st.sampled_from(ODD_KINDS["text"] + ODD_KINDS["empty"] + ODD_KINDS["unicode"])


def _subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return {name: sub for name, sub in action.choices.items() if name not in EXCLUDED_COMMANDS}


SUBCOMMANDS = _subcommands()


def _integer(flag: str, odd: bool):
    return ODD if odd else st.integers(1, INTEGER_FLAGS[flag]).map(str)


def _float(odd: bool):
    return ODD if odd else st.one_of(st.floats(1e-4, 1).map(repr), st.floats(-100, 100).map(repr))


def _file_contents(odd: bool):
    def rows(header: str, width: int, number):
        return st.lists(st.lists(number, min_size=width, max_size=width).map(",".join), min_size=2, max_size=12).map(
            lambda lines: "\n".join([header, *lines]) + "\n")

    valid = st.floats(-100, 100).map(lambda x: f"{x:.3f}")
    if not odd:
        return st.one_of(rows("t_u,t_c", 2, valid), st.lists(
            st.tuples(st.sampled_from(["a", "b", "7"]), valid, valid), min_size=2, max_size=15).map(
            lambda r: "sensor,t_u,t_c\n" + "".join(f"{s},{u},{c}\n" for s, u, c in r)),
            st.just('{"format": "jaxcal-calibration/1", "model": "linear", "params": [1, 2], "scale": 0.1}'))
    number = st.one_of(valid, valid, ODD)
    header = st.sampled_from(["t_u,t_c", "sensor,t_u,t_c", "t_u", "t_c,t_u", "x,y", "", "t_u,t_c,x"])
    table = st.tuples(header, st.lists(st.lists(number, min_size=1, max_size=4).map(",".join), max_size=12)).map(
        lambda hr: "\n".join([hr[0], *hr[1]]) + "\n")
    constant = st.tuples(valid, st.integers(2, 6)).map(  # every t_u the same: the slope is undetermined
        lambda vn: "t_u,t_c\n" + "".join(f"{vn[0]},{k}\n" for k in range(vn[1])))
    fleet = st.lists(st.tuples(st.sampled_from(["a", "b", "", " ", "7", "ü", "-3"]), number, number),
                     max_size=15).map(lambda r: "sensor,t_u,t_c\n" + "".join(f"{s},{u},{c}\n" for s, u, c in r))
    good = '{"format": "jaxcal-calibration/1", "model": "linear", "params": [1, 2], "scale": 0.1, "loss": 1}'
    calibration = st.sampled_from([
        "{", "[]", '{"format": "jaxcal-calibration/1"}', "[" * 5000 + "]" * 5000,
        good.replace("[1, 2]", '[1e39, "x"]'), good.replace("[1, 2]", "[1" + "0" * 400 + ", 2]"),
        good.replace('"linear"', '["linear"]'), good.replace('"loss": 1', '"loss": 1, "settings": [1]'),
        good.replace("0.1", "1e300"), good.replace("0.1", "0"), good.replace('"loss": 1', '"loss": "x"')])
    garbage = st.binary(max_size=64).map(lambda b: b.decode("latin-1"))
    return st.one_of(table, constant, fleet, calibration, garbage, st.just(""))


@st.composite
def invocations(draw):
    """(argv with {tmp} placeholders, {file name: contents})."""
    command = draw(st.sampled_from(sorted(SUBCOMMANDS)))
    parser = SUBCOMMANDS[command]
    optional = [a for a in parser._actions if a.option_strings and not set(a.option_strings) & EXCLUDED_FLAGS]
    chosen = draw(st.lists(st.sampled_from(optional), unique_by=id, max_size=4)) if optional else []
    positionals = [a for a in parser._actions if not a.option_strings and a.dest != "help"]
    # one odd value (or none) among valid ones: a single odd value reaches deeper than many
    odd_slot = draw(st.integers(0, max(0, len(chosen) + len(positionals) - 1)))
    argv, files = [command], {}
    for slot, action in enumerate(chosen):
        flag, odd = action.option_strings[-1], slot == odd_slot
        if action.nargs == 0:
            argv.append(flag)
        elif flag in INTEGER_FLAGS:
            argv += [flag, draw(_integer(flag, odd))]
        elif flag in CHOICES:
            argv += [flag, draw(ODD_TEXT if odd else st.sampled_from(CHOICES[flag]))]
        elif flag in OUTPUT_FLAGS:
            good = "{tmp}/out/result.png" if flag == "--plot" else "{tmp}/out/result"
            argv += [flag, draw(st.sampled_from(["{tmp}/out", "{tmp}/missing/dir/file", ""]) if odd else st.just(good))]
        elif flag in FILE_FLAGS:
            suffix = draw(st.sampled_from(["csv", "json", "npz", "txt"]) if odd else st.just("csv"))
            name = f"input{len(files)}.{suffix}"
            if flag == "--cal":
                name = name.replace(".csv", ".json")
            files[name] = draw(_file_contents(odd))
            argv += [flag, f"{{tmp}}/{name}"]
        elif flag == "--log-epochs":
            argv += [flag, ",".join(draw(st.lists(_integer("--epochs", odd), min_size=1, max_size=3)))]
        elif action.nargs == "+":
            argv += [flag, *draw(st.lists(_float(odd), min_size=1, max_size=4))]
        else:
            argv += [flag, draw(_float(odd))]
    for slot, action in enumerate(positionals, start=len(chosen)):
        odd = slot == odd_slot
        if action.dest == "data":
            files["fleet.csv"] = draw(_file_contents(odd))
            argv.append("{tmp}/fleet.csv")
        elif action.nargs == "*":
            argv += draw(st.lists(_float(odd), max_size=3))
    return argv, files


def _examples() -> int:
    return int(os.environ.get("JAXCAL_FUZZ_EXAMPLES", "60"))


@pytest.mark.standard_promotion  # optax's Adam is among the optimizers a run may draw
@settings(max_examples=_examples(), deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture, HealthCheck.data_too_large])
@given(invocation=invocations())
def test_any_arguments_end_in_a_status_never_a_traceback(tmp_path_factory, capsys, invocation):
    argv, files = invocation
    tmp = tmp_path_factory.mktemp("fuzz")
    (tmp / "out").mkdir()
    for name, contents in files.items():
        (tmp / name).write_text(contents, encoding="utf-8", errors="surrogateescape")
    before = {p for p in tmp.rglob("*")}
    status = main([a.replace("{tmp}", str(tmp)) for a in argv])
    _out, err = capsys.readouterr()
    assert status in (0, 1, 2), (argv, err)
    assert "Traceback" not in err, (argv, err)
    assert "Warning" not in err, (argv, err)
    if status == 2:
        assert err.count("\n") == 1, (argv, err)
        assert err.startswith(f"jaxcal {argv[0]}: error: "), (argv, err)
    left = {p for p in tmp.rglob("*")} - before
    assert not [p for p in left if p.name.endswith(".part") or p.name.startswith(".")], (argv, left)
    if status != 0:
        assert not left, (argv, left)
    assert all(isinstance(p, Path) for p in left)
