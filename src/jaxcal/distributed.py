"""Several processes, several machines: how a run's work is shared once ``jax.distributed`` is joined.

A multi-process fleet splits the sensors into contiguous shares, one per process; each process
fits its share on its local devices, and process 0 gathers every share (a gloo all-gather on
CPU) and writes the result. A multi-process single fit (``jaxcal train``) splits the readings:
one SPMD program over every device of the run, its sums all-reduced across the processes.
Joining the run is a start-up choice, the command line's (``jaxcal.cli._startup.join``);
``jaxcal launch`` stops every local process as soon as one exits with an error.
"""

from __future__ import annotations

import os
from typing import Any, NamedTuple

import numpy as np

__all__ = ["Cluster", "from_environment", "gather_rows", "global_readings", "planned", "share"]

#: Environment variables `jaxcal launch` sets for its processes (flags take precedence).
ENV = {"coordinator": "JAXCAL_COORDINATOR", "num_processes": "JAXCAL_NUM_PROCESSES", "process_id": "JAXCAL_PROCESS_ID"}


class Cluster(NamedTuple):
    process_id: int
    num_processes: int


def from_environment(coordinator: str | None, num_processes: int | None,
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
    coordinator, num_processes, process_id = from_environment(coordinator, num_processes, process_id)
    if coordinator is None or num_processes is None or process_id is None or num_processes < 2:
        return None
    if not 0 <= process_id < num_processes:
        return None  # initialize() reports it
    return Cluster(process_id, num_processes)


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
    shares must be equal (a padded reading would change the mean): readings that do not divide
    evenly over the run's devices are gathered and held whole by every device instead (as
    :func:`jaxcal.sharding.shard_readings` falls back to fewer devices), the same fit unsplit.
    """
    import jax
    from jax.sharding import Mesh, NamedSharding, PartitionSpec

    devices = jax.device_count()
    whole = n is None
    if whole:
        n = len(t_u)
    if n % devices:
        if not whole:
            gathered = gather_rows({"t_u": np.asarray(t_u), "t_c": np.asarray(t_c)}, n, cluster)
            t_u, t_c = gathered["t_u"], gathered["t_c"]
        # every device holds every reading (no padding to change the mean): no collective per epoch
        sharding = NamedSharding(Mesh(np.asarray(jax.devices()), ("readings",)), PartitionSpec())
        return tuple(jax.make_array_from_process_local_data(sharding, np.ascontiguousarray(values), (n,))
                     for values in (t_u, t_c))
    if whole:
        t_u, t_c = t_u[share(n, cluster)], t_c[share(n, cluster)]
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
