"""Several processes, several machines: JAX's own runtime (``jax.distributed``), configured at start-up.

A multi-process fleet splits the sensors into contiguous shares, one per process; each process
fits its share on its local devices, and process 0 gathers every share (a gloo all-gather on
CPU) and writes the result. A multi-process single fit (``jaxcal train``) splits the readings:
one SPMD program over every device of the run, its sums all-reduced across the processes.
Nothing here is home-made networking: the coordinator, the heartbeats and the collectives are
JAX's.

Failure is bounded: a process that dies or never joins makes the others fail within the
timeout (``initialization_timeout`` and ``heartbeat_timeout_seconds`` of
``jax.distributed.initialize``); ``jaxcal launch`` does better for local runs and stops every
process as soon as one exits with an error.
"""

from __future__ import annotations

import os
from typing import Any, NamedTuple

import numpy as np

from ._checks import InvalidInput

__all__ = ["Cluster", "gather_rows", "global_readings", "initialize", "planned", "share"]

#: Environment variables `jaxcal launch` sets for its processes (flags take precedence).
ENV = {"coordinator": "JAXCAL_COORDINATOR", "num_processes": "JAXCAL_NUM_PROCESSES", "process_id": "JAXCAL_PROCESS_ID"}


class Cluster(NamedTuple):
    process_id: int
    num_processes: int


def initialize(coordinator: str | None, num_processes: int | None, process_id: int | None,
               timeout: int = 60) -> Cluster:
    """Join the run described by the flags, the ``JAXCAL_*`` variables, or a cluster's environment.

    Must run before any JAX computation. With none of them set, this is a single process.
    """
    import jax

    coordinator, num_processes, process_id = _from_environment(coordinator, num_processes, process_id)
    auto = os.environ.get("JAXCAL_CLUSTER_AUTODETECT") == "1"  # SLURM, Open MPI, ... via JAX
    if coordinator is None and not auto:
        if num_processes not in (None, 1):
            raise InvalidInput("--num-processes: needs --coordinator HOST:PORT")
        return Cluster(0, 1)
    if coordinator is not None and (num_processes is None or process_id is None):
        raise InvalidInput("--coordinator: needs --num-processes and --process-id")
    if num_processes is not None and process_id is not None and not 0 <= process_id < num_processes:
        raise InvalidInput(f"--process-id: must be in 0..{num_processes - 1}, got {process_id}")
    if coordinator is not None and process_id not in (None, 0):
        _wait_for_coordinator(coordinator, timeout)
    _keep_stdout_for_results()
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    import inspect

    # a peer that dies is noticed within the timeout too, where this jax can be told (0.7 and later)
    heartbeat = ({"heartbeat_timeout_seconds": timeout}
                 if "heartbeat_timeout_seconds" in inspect.signature(jax.distributed.initialize).parameters else {})
    jax.distributed.initialize(coordinator, num_processes, process_id, initialization_timeout=timeout, **heartbeat)
    return Cluster(jax.process_index(), jax.process_count())


def _from_environment(coordinator: str | None, num_processes: int | None,
                      process_id: int | None) -> tuple[str | None, int | None, int | None]:
    """The flags, completed from the ``JAXCAL_*`` variables that ``jaxcal launch`` sets."""
    coordinator = coordinator or os.environ.get(ENV["coordinator"])
    if num_processes is None and os.environ.get(ENV["num_processes"]):
        num_processes = int(os.environ[ENV["num_processes"]])
    if process_id is None and os.environ.get(ENV["process_id"]):
        process_id = int(os.environ[ENV["process_id"]])
    return coordinator, num_processes, process_id


def planned(coordinator: str | None, num_processes: int | None, process_id: int | None) -> Cluster | None:
    """This process's place in a multi-process run as its flags (or launch's variables) give it,
    known before it joins, so that it can read only its share of the input; ``None`` for a
    single process, or where only the cluster's runtime knows (auto-detection)."""
    coordinator, num_processes, process_id = _from_environment(coordinator, num_processes, process_id)
    if coordinator is None or num_processes is None or process_id is None or num_processes < 2:
        return None
    if not 0 <= process_id < num_processes:
        return None  # initialize() reports it
    return Cluster(process_id, num_processes)


def _wait_for_coordinator(coordinator: str, timeout: int) -> None:
    """Fail with one line, not the runtime's abort, when process 0 cannot be reached at all."""
    import socket
    import time

    host, _, port = coordinator.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")  # [::1]:1234
    if not host or not (port.isascii() and port.isdigit()):
        raise InvalidInput(f"--coordinator: expected HOST:PORT, got {coordinator!r}")
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, int(port)), timeout=1.0):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise InvalidInput(f"--coordinator: cannot reach {coordinator} within {timeout} s; "
                                   "is process 0 running there?") from None
            time.sleep(0.2)


def _keep_stdout_for_results() -> None:
    """Send the native runtime's prints (gloo announces its connections on stdout) to stderr,
    keeping standard output for jaxcal's own result (one JSON object, say)."""
    import sys

    sys.stdout.flush()
    results = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = os.fdopen(results, "w", buffering=1)


def share(n: int, cluster: Cluster) -> slice:
    """This process's contiguous share of ``n`` items (the first ones get one more when uneven)."""
    base, extra = divmod(n, cluster.num_processes)
    start = cluster.process_id * base + min(cluster.process_id, extra)
    return slice(start, start + base + (1 if cluster.process_id < extra else 0))


def global_readings(t_u: np.ndarray, t_c: np.ndarray, cluster: Cluster, n: int | None = None) -> tuple[Any, Any]:
    """One fit's readings as global arrays over every device of the run, each process holding
    only its contiguous share: ``training_loop`` then runs as one SPMD program whose mean over
    the readings is an all-reduce across the processes.

    ``t_u, t_c`` are every reading, or (with ``n``, the run's count) this process's share
    already (``share(n, cluster)``, as :func:`jaxcal.io.read_readings_share` reads it). The
    shares must be equal (a padded reading would change the mean): the readings must divide
    evenly over the run's devices.
    """
    import jax
    from jax.sharding import Mesh, NamedSharding, PartitionSpec

    devices = jax.device_count()
    if n is None:
        n = len(t_u)
        t_u, t_c = t_u[share(n, cluster)], t_c[share(n, cluster)]
    if n % devices:
        raise InvalidInput(f"--num-processes: the {n} readings must split evenly over the run's {devices} devices")
    sharding = NamedSharding(Mesh(np.asarray(jax.devices()), ("readings",)), PartitionSpec("readings"))
    return tuple(jax.make_array_from_process_local_data(sharding, np.ascontiguousarray(values), (n,))
                 for values in (t_u, t_c))


def gather_rows(arrays: dict[str, np.ndarray], n: int, cluster: Cluster) -> dict[str, Any]:
    """All-gather each process's rows (in process order) so that every process holds all ``n``."""
    if cluster.num_processes == 1:
        return arrays
    from jax.experimental import multihost_utils

    longest = -(-n // cluster.num_processes)
    out = {}
    for key, value in arrays.items():
        padded = np.zeros((longest, *value.shape[1:]), value.dtype)
        padded[: len(value)] = value
        # 64-bit values travel as pairs of 32-bit words: bit for bit, with or without x64
        wide = padded.dtype.itemsize == 8
        sent = padded.reshape(longest, -1).view(np.uint32) if wide else padded
        everything = np.asarray(multihost_utils.process_allgather(sent))
        if wide:
            everything = everything.view(padded.dtype).reshape(cluster.num_processes, *padded.shape)
        out[key] = np.concatenate([everything[p][: _share_len(n, p, cluster.num_processes)]
                                   for p in range(cluster.num_processes)])
    return out


def _share_len(n: int, process: int, count: int) -> int:
    piece = share(n, Cluster(process, count))
    return piece.stop - piece.start
