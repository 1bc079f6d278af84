"""Single fits on readings sharded over every local device (``jax.sharding``).

The readings are laid along a one-axis ``Mesh`` of the local devices; ``training_loop`` is then
compiled by XLA's SPMD partitioner, and the loss's mean over the sharded readings (and the
gradient's sums) become all-reduce collectives. Results agree with one device within float32
reduction-order bounds (the partial sums are added in another order).
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

__all__ = ["shard_readings"]


def shard_readings(t_u: Any, t_c: Any, devices: Any = None) -> tuple[jax.Array, jax.Array]:
    """Place ``t_u`` and ``t_c`` across ``devices`` (default: all local ones) along the readings.

    A padded reading would change the mean, so shards must be equal: the readings go to the
    largest number of the devices that divides their count (1001 readings on 4 devices: 1).
    """
    devices = list(jax.local_devices() if devices is None else devices)
    n = np.shape(t_u)[0]
    devices = devices[: max(k for k in range(1, len(devices) + 1) if n % k == 0)]
    mesh = Mesh(np.asarray(devices), ("readings",))
    sharding = NamedSharding(mesh, PartitionSpec("readings"))
    return jax.device_put(np.asarray(t_u), sharding), jax.device_put(np.asarray(t_c), sharding)
