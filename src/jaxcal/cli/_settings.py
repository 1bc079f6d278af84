"""Every flag of a fit, parsed and checked into a typed :class:`FitSettings` before JAX starts."""

from __future__ import annotations

import argparse
import dataclasses
import math
from collections.abc import Callable, Sequence
from typing import Any

from .. import _checks
from ._parser import canonical, did_you_mean

__all__ = ["DEFAULTS", "GD_ONLY", "TABLE_FLAGS", "FitSettings", "check_output", "choice", "flagged", "float_arg",
           "int_arg", "need_matplotlib", "parse_devices", "parse_fit", "parse_model", "parse_solver", "parse_table",
           "placed", "read_data"]

#: Bounds of the flags that start things: local processes of a loopback trial, CPU devices of one
#: process, and seconds to wait for a peer (a day).
MAX_LAUNCHED = 64
MAX_CPU_DEVICES = 256
MAX_TIMEOUT = 86_400

#: The most learning rates of one sweep: every configuration's params and results are held in memory.
MAX_SWEEP = 10_000_000

#: The defaults of the flags only gradient descent reads (their argparse default is ``None``, so that
#: a flag given to another solver is seen: see :func:`parse_solver`).
DEFAULTS = {"scale": "0.1", "epochs": "5000", "lr": "1e-2", "optimizer": "plain", "gradient": "autograd",
            "fd_delta": "0.1", "log_every": "500", "split_seed": "0"}

#: The flags only gradient descent reads, by argparse name, in the order of the help: given with
#: another solver they are refused (a flag that would be ignored is not accepted).
GD_ONLY = {"scale": "--scale", "epochs": "--epochs", "lr": "--lr", "optimizer": "--optimizer",
           "gradient": "--gradient", "fd_delta": "--fd-delta", "log_every": "--log-every", "log_epochs": "--log-epochs",
           "val_fraction": "--val-fraction", "split_seed": "--split-seed", "book_split": "--book-split",
           "exact": "--exact"}

#: How a table's file is read (:func:`parse_table`): the flags by argparse name, which is also the name
#: the readers (:mod:`jaxcal.io`) give the argument in their errors.
TABLE_FLAGS = {"columns": "--columns", "separator": "--separator", "missing": "--missing"}


@dataclasses.dataclass(frozen=True)
class FitSettings:
    """What ``train``, ``parity``, ``sweep`` and ``fleet`` fit, checked.

    ``t_u`` is the scaled readings (the book's ``t_un``), ``raw_t_u`` the readings as read;
    ``n_total`` is the file's count when this process read only its share of it. ``sigma`` is each
    reading's standard uncertainty where ``--data`` has a sigma column (a weighted fit), ``dropped``
    the readings of ``--data`` dropped for a missing value, ``sensor`` the sensor its sensor column names.
    """

    n_epochs: int
    learning_rate: float
    params: list[float]
    model: str
    optimizer: str  # the flag's value, a name of the library's table (jaxcal.updates.OPTIMIZERS)
    scale: float
    x64: bool
    devices: int | None = None
    solver: str = "gd"  # --solver, "auto" resolved: gd (the book's gradient descent) or a key of solvers.SOLVERS
    gradient: str = "autograd"
    delta: float = 0.1
    log_every: int = 500
    log_epochs: set[int] = dataclasses.field(default_factory=set)
    exact: bool = False
    data: str | None = None
    t_u: Any = None
    t_c: Any = None
    raw_t_u: Any = None
    val: tuple[Any, Any] | None = None
    n_total: int | None = None
    sigma: Any = None
    dropped: int = 0
    sensor: str | None = None

    @property
    def library_optimizer(self) -> str | None:
        """What the library's ``optimizer=`` is given: ``None`` for the seed's plain update."""
        return None if self.optimizer == "plain" else self.optimizer

    @property
    def dtype(self) -> Any:
        return _dtype(self.x64)

    def log_schedule(self) -> tuple[int, set[int] | None]:
        """The library's log interval, and the epochs to keep on the host (None: all of them)."""
        if not self.log_epochs:
            return self.log_every, None
        keep = set(self.log_epochs) | set(range(self.log_every, self.n_epochs + 1, self.log_every))
        return 1, keep


def float_arg(text: str, name: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise _checks.InvalidInput(name, f"not a number: {text!r}") from None


def int_arg(text: str, name: str, most: int = _checks.MAX_EPOCHS) -> int:
    """A positive integer flag, at most ``most`` (by default what an int32 counter holds)."""
    try:
        value = int(text)
    except ValueError:
        raise _checks.InvalidInput(name, f"must be a positive integer, got {text!r}") from None
    return _checks.check_positive_int(value, name, most)


def choice(value: str, choices: Sequence[str], name: str, what: str) -> str:
    """The choice ``value`` names, in any case (``Adam`` is ``adam``), spelled as ``choices`` spell it.

    Args:
      value: the flag's text.
      choices: the canonical spellings.
      name: the flag, for the error.
      what: what a choice is (``optimizer``), for the error.

    Returns:
      The canonical spelling; an unknown ``value`` raises ``InvalidInput`` with the closest choice.
    """
    found = canonical(value, choices)
    if found is None:
        raise _checks.InvalidInput(name, f"unknown {what} {_checks.shown(value)}; {did_you_mean(value, choices)}")
    return found


def parse_devices(args: argparse.Namespace) -> int | None:
    """``--devices``: CPU devices to start (a start-up choice), checked."""
    return None if args.devices is None else int_arg(args.devices, "--devices", MAX_CPU_DEVICES)


def placed(device: str, kind: str, size: int) -> Any:
    """Where ``--device`` puts a :func:`jaxcal.calibrate` of ``size`` of ``kind`` (``"fit"``: readings,
    ``"fleet"``: sensors) of work: a context in which that device is JAX's default, or one that changes
    nothing (the default backend's devices: ``calibrate`` splits a fleet over all of them)."""
    import contextlib

    import jax

    from .._layout import chosen_device

    target = chosen_device(device, kind, size)
    return contextlib.nullcontext() if target is None else jax.default_device(target)


def _flag(args: argparse.Namespace, name: str) -> str:
    """A gradient-descent flag's text: as given, or its default (:data:`DEFAULTS`)."""
    value = getattr(args, name, None)
    return DEFAULTS[name] if value is None else value


def parse_solver(args: argparse.Namespace) -> str:
    """``--solver`` with ``auto`` resolved (``ls`` for a model linear in its params, ``lm`` otherwise, as
    :func:`jaxcal.calibrate` chooses); a command without the flag fits by gradient descent (``gd``).

    A flag only gradient descent reads (:data:`GD_ONLY`), or ``--init`` for ``ls`` (which needs no
    start), given with another solver is refused with one line: it would be ignored.
    """
    from ..core import MODELS
    from ._parser import solver_choices

    solver = getattr(args, "solver", None) or "gd"
    if solver == "auto":
        if args.model.strip().isidentifier():
            spec = MODELS[choice(args.model, list(MODELS), "--model", "model")]
        else:
            spec = _expression(args.model)[1]
        solver = "ls" if spec.linear else "lm"
    if solver == "gd":
        return solver
    what = f"this run's solver is {solver} ({solver_choices(auto=False)[solver]})"
    for name, flag in GD_ONLY.items():
        if getattr(args, name, None) not in (None, False):
            raise _checks.InvalidInput(flag, f"only gradient descent (--solver gd) reads it; {what}")
    if solver == "ls" and args.init is not None:
        raise _checks.InvalidInput("--init", f"least squares needs no start (--solver gd and lm read it); {what}")
    return solver


def parse_model(args: argparse.Namespace, *, schedule: bool = False, expressions: bool = False) -> FitSettings:
    """The flags every fitting command has (``--scale --epochs --lr --init --optimizer --model
    --x64``, and ``--solver`` where the command has it), checked; no readings yet. ``schedule``: also
    ``--log-every``, ``--gradient`` and ``--fd-delta`` (train, parity and sweep), each checked in the
    order of the flags' help. A solver other than ``gd`` fits the readings as read (``scale`` 1)."""
    from ..core import MODELS
    from ..evaluate import GRADIENTS
    from ..updates import OPTIMIZERS

    x64 = bool(args.x64)
    dtype = _dtype(x64)
    solver = parse_solver(args)
    epochs = int_arg(_flag(args, "epochs"), "--epochs")
    log_every = int_arg(_flag(args, "log_every"), "--log-every") if schedule else 500
    lr = _checks.check_learning_rate(float_arg(_flag(args, "lr"), "--lr"), "--lr")
    _checks.fit_dtype(lr, dtype, "--lr", nonzero=True)
    scale = float_arg(_flag(args, "scale"), "--scale")
    if not (math.isfinite(scale) and scale != 0):
        raise _checks.InvalidInput("--scale", f"must be a finite nonzero number, got {args.scale!r}")
    _checks.fit_dtype(scale, dtype, "--scale", nonzero=True)
    if solver != "gd":
        scale = 1.0  # least squares needs no preconditioning: the readings as read
    optimizer = choice(_flag(args, "optimizer"), list(OPTIMIZERS), "--optimizer", "optimizer")
    if expressions and not args.model.strip().isidentifier():
        model, spec = _expression(args.model)
    else:
        model = choice(args.model, list(MODELS), "--model", "model")
        spec = MODELS[model]
    gradient, delta = "autograd", 0.1
    if schedule:
        gradient = choice(_flag(args, "gradient"), list(GRADIENTS), "--gradient", "gradient")
        delta = float_arg(_flag(args, "fd_delta"), "--fd-delta")
        if not (math.isfinite(delta) and delta > 0):
            raise _checks.InvalidInput("--fd-delta", f"must be a positive finite number, got {args.fd_delta!r}")
        _checks.fit_dtype(delta, dtype, "--fd-delta", nonzero=True)
    names = spec.param_names
    if solver == "ls":
        # least squares needs no start (parse_solver refused --init): a placeholder the fit never reads
        init = [0.0] * len(names) if spec.init is None else list(spec.init)
    elif args.init is not None and any("=" in v for v in args.init):
        init = _named_init(args.init, names)
    elif args.init is None and spec.init is None:
        raise _checks.InvalidInput("--init", f"the model {model!r} has no default start; give its params "
                                             f"{','.join(f'{n}=...' for n in names)}")
    else:
        init = list(spec.init) if args.init is None else [float_arg(v, "--init") for v in args.init]
    if len(init) != len(names):
        named = model if model.isidentifier() else repr(model)
        raise _checks.InvalidInput(
            "--init", f"the {named} model expects {len(names)} numbers ({' '.join(names)}), got {len(init)}")
    _checks.check_finite_array(init, "--init")
    _checks.fit_dtype(init, dtype, "--init")
    return FitSettings(epochs, lr, init, model, optimizer, scale, x64, solver=solver, gradient=gradient, delta=delta,
                       log_every=log_every)


def _expression(text: str) -> tuple[str, Any]:
    """An expression model's text (as given, the name saved results carry) and its :class:`ModelSpec`;
    a text the parser refuses is one line naming ``--model``."""
    from ..core import resolve_model

    try:
        return text.strip(), resolve_model(text.strip())
    except (ValueError, TypeError) as error:
        raise _checks.InvalidInput("--model", str(error).removeprefix("model: ")) from None


def _named_init(values: list[str], names: tuple[str, ...]) -> list[float]:
    """``--init b1=250,b2=5e-4`` (or ``b1=250 b2=5e-4``): a start for each named param."""
    given: dict[str, float] = {}
    for pair in (p for v in values for p in v.split(",") if p.strip()):
        name, equals, number = (piece.strip() for piece in pair.partition("="))
        if not equals:
            raise _checks.InvalidInput("--init", f"{pair.strip()!r} is not name=number; give every param by name "
                                                 "or none")
        if name not in names:
            raise _checks.InvalidInput("--init", f"{name!r} is not a param of the model; its params are "
                                                 f"{', '.join(names)}")
        if name in given:
            raise _checks.InvalidInput("--init", f"{name} is given twice")
        given[name] = float_arg(number, "--init")
    missing = [n for n in names if n not in given]
    if missing:
        raise _checks.InvalidInput("--init", f"no start for {', '.join(missing)}")
    return [given[n] for n in names]


def _dtype(x64: bool) -> Any:
    import numpy as np

    return np.float64 if x64 else np.float32


def parse_table(args: argparse.Namespace) -> dict[str, Any]:
    """``--columns``, ``--separator`` and ``--missing`` (where the command has them) as the readers'
    keyword arguments (:func:`jaxcal.io.read_readings`); a bad mapping is one line naming ``--columns``."""
    from ..io import parse_columns

    text = getattr(args, "columns", None)
    try:
        mapping = None if text is None else parse_columns(text)
    except _checks.InputError as error:  # the library names its argument; the command line names the flag
        raise _checks.InvalidInput("--columns", error.problem) from None
    missing = getattr(args, "missing", None)
    return {"columns": mapping, "separator": getattr(args, "separator", None),
            "missing": None if missing is None else [cell.strip() for cell in missing.split(",")]}


def flagged(read: Callable[[], Any], path: str) -> Any:
    """``read()`` of the table at ``path``; an error about how a table reader reads it (``columns``,
    ``separator``, ``missing``: :data:`TABLE_FLAGS`) named by its flag, one about the file itself by its
    path, even where the file is called like a flag (a table named ``missing``)."""
    try:
        return read()
    except _checks.InputError as error:
        if error.problem and error.name in TABLE_FLAGS and error.name != path:
            raise error.renamed(TABLE_FLAGS[error.name]) from None
        raise


def read_data(path: str, dtype: Any, reading: dict[str, Any], part: Callable[[int], slice] | None = None) -> Any:
    """``--data``: one sensor's readings (:func:`jaxcal.io.read_readings` with ``reading``, from
    :func:`parse_table`). An error about how the file is read names the flag; a table of several
    sensors is a fleet, and the error says which command calibrates one."""
    from ..io import read_readings

    try:
        return flagged(lambda: read_readings(path, dtype, part=part, **reading), path)
    except _checks.InputError as error:
        if error.problem and "a readings table holds one sensor's readings" in error.problem:
            several = error.problem.split(";", 1)[0]  # "names 3 sensors"
            raise _checks.InvalidInput(error.name, f"{several}; train fits one sensor's readings: calibrate every "
                                                   f"sensor of a table with 'jaxcal fleet {path}'") from None
        raise


def parse_fit(args: argparse.Namespace, part: Callable[[int], slice] | None = None, *,
              expressions: bool = False) -> FitSettings:
    """Parse and check every flag of ``train``, ``parity`` and ``sweep`` before any JAX work
    starts, and read the readings.

    ``part``: read only the rows ``part(n)`` of ``--data`` (a process's share of a multi-process
    run); ``n_total`` is then the file's count. ``expressions``: ``--model`` may be an expression
    in ``t_u`` (train). ``--columns``, ``--separator`` and ``--missing``, where the command has them,
    say how ``--data`` is read; a sigma column (each reading's standard uncertainty) weights the fit
    of ``--solver ls`` and ``lm``, and is refused for gradient descent, which fits without weights.
    """
    import numpy as np

    from .. import data as book
    from ..core import resolve_model

    s = parse_model(args, schedule=True, expressions=expressions)
    dtype = s.dtype
    if s.solver == "ls" and not resolve_model(s.model).linear:
        raise _checks.InvalidInput("--solver", f"ls solves a model linear in its params in one step; {s.model!r} "
                                               "is not: fit it with --solver lm (or auto) from a start (--init)")
    # what parse_model does not read; a command without a flag (sweep has no schedule) has its default
    log_epochs, book_split, val_fraction = (getattr(args, flag, None)
                                            for flag in ("log_epochs", "book_split", "val_fraction"))
    more: dict[str, Any] = {"exact": bool(getattr(args, "exact", False)), "data": args.data}
    if log_epochs:
        more["log_epochs"] = {int_arg(p.strip(), "--log-epochs") for p in log_epochs.split(",") if p.strip()}
    if more["exact"] and s.x64:
        raise _checks.InvalidInput("--exact", "reproduces the float32 recording; it cannot be combined with --x64")
    reading = parse_table(args)
    if args.data is None:
        for name, flag in TABLE_FLAGS.items():
            if getattr(args, name, None) is not None:
                raise _checks.InvalidInput(flag, "says how --data is read; give --data FILE (the book's readings "
                                                 "are read as they are)")
    elif reading["columns"] and "sigma" in reading["columns"] and s.solver == "gd":
        raise _checks.InvalidInput("--columns", "names a sigma column (weights); gradient descent (--solver gd) "
                                                "fits without weights: use --solver ls or lm")
    split = bool(book_split) or val_fraction is not None
    if args.data is None:
        t_u, t_c = book.readings(dtype)
    else:
        readings = read_data(args.data, dtype, reading, part if not split else None)
        t_u, t_c = readings.t_u, readings.t_c
        more.update(sigma=readings.sigma, dropped=int(readings.dropped), sensor=readings.sensor)
        if part is not None and not split:
            more["n_total"] = readings.total
        if readings.sigma is not None and s.solver == "gd":
            raise _checks.InvalidInput("--solver", f"{args.data} has a sigma column (weights); gradient descent "
                                                   "fits without weights: use --solver ls or lm")
    if split:
        if book_split:
            if args.data is not None:
                raise _checks.InvalidInput("--book-split", "the recorded split is for the book's readings only")
            train_idx, val_idx = (np.asarray(i) for i in book.BOOK_SPLIT)
        else:
            fraction = float_arg(val_fraction, "--val-fraction")
            try:
                seed = int(_flag(args, "split_seed"))
            except ValueError:
                seed = -1
            if seed < 0:
                raise _checks.InvalidInput("--split-seed", f"must be an integer >= 0, got {args.split_seed!r}")
            train_idx, val_idx = book.split_indices(len(t_u), fraction, seed)
        with np.errstate(over="ignore"):
            more["val"] = ((dtype(s.scale) * t_u[val_idx]).astype(dtype), t_c[val_idx])
        t_u, t_c = t_u[train_idx], t_c[train_idx]
    with np.errstate(over="ignore"):
        scaled = (dtype(s.scale) * t_u).astype(dtype)
    _checks.check_finite_array(scaled, "--scale")
    if more.get("n_total") is None:  # a process's share of a split run cannot tell (its peers hold the rest)
        check_determined(scaled, s.model, "--data" if args.data is not None else "--scale")
    return dataclasses.replace(s, t_u=scaled, raw_t_u=t_u, t_c=t_c, **more)


def _distinct(values: Any) -> str:
    return f"{values} distinct t_u value" + ("" if values == 1 else "s")


def check_determined(t_u: Any, model: str, name: str) -> None:
    """Refuse readings from which the model cannot be determined: fewer distinct ``t_u`` values
    than it has parameters (all readings at one temperature leave the slope undetermined)."""
    import numpy as np

    from ..core import resolve_model

    need = resolve_model(model).n_params
    distinct = len(np.unique(t_u))
    if distinct < need:
        named = model if model.isidentifier() else repr(model)
        raise _checks.InvalidInput(name, f"the readings have {_distinct(distinct)}; the {named} model's {need} "
                                   f"parameters need at least {need} (the fit is undetermined)")


def check_output(path: str | None, name: str) -> None:
    """Refuse an output path that cannot be written, before any work."""
    import os

    if path is None:
        return
    if os.path.isdir(path):
        raise _checks.InvalidInput(name, f"{path} is a directory")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder) or not os.access(folder, os.W_OK):
        raise _checks.InvalidInput(name, f"cannot write {path}: its folder is missing or not writable")
    if name == "--plot":  # every command's figure: its suffix names the format
        from ..plots import figure_format

        figure_format(path, name)


def need_matplotlib() -> None:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise _checks.InvalidInput("--plot", "matplotlib is not installed; install the plot extra: "
                                   "pip install 'jaxcal[plot]'") from None
