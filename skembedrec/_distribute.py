"""Where and how the network trains: a ``tf.distribute`` strategy named by a parameter, XLA.

The estimator's ``distribute`` and ``jit_compile`` parameters are plain values (a string or
None, a bool), so estimators stay cloneable and picklable; the strategy object is made here,
when the network is built, and the network is built and compiled in its scope (variables
created there are mirrored on every device of the strategy).

Threads: TensorFlow sizes its thread pools once, when its runtime starts, from
``TF_NUM_INTRAOP_THREADS`` and ``TF_NUM_INTEROP_THREADS`` (default: one thread per core for
each). Several TensorFlow processes on one machine (Dask workers, joblib ``n_jobs``) should
each get ``cores / processes`` threads through those variables, set before TensorFlow starts
in the process: :func:`worker_thread_env` gives them.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from contextlib import nullcontext
from typing import Any

import keras
import tensorflow as tf

from ._validation import check_positive_int

DISTRIBUTE_STRATEGIES = frozenset({"mirrored"})


@functools.cache
def make_strategy(distribute: str) -> tf.distribute.Strategy:
    """The ``tf.distribute`` strategy named ``distribute``, one object per process.

    One object, because a second ``MirroredStrategy`` numbers its collective operations from
    the same start as the first, and TensorFlow's runtime remembers each number's tensor
    shape for the whole process: a later fit with another batch size then failed with
    "Collective ops is aborted by: Shape mismatch". The devices of a process do not change
    once TensorFlow has started, so one strategy serves every fit.

    ``"mirrored"``: synchronous data parallelism over every GPU of this machine, or, without
    GPUs, over every logical CPU device (one unless configured with
    ``tf.config.set_logical_device_configuration``). Each batch is split across the devices
    and the gradients are summed, so ``batch_size`` is the global batch.

    Examples
    --------
    >>> make_strategy("mirrored").num_replicas_in_sync >= 1
    True
    """
    if distribute == "mirrored":
        devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
        return tf.distribute.MirroredStrategy([device.name for device in devices])
    raise ValueError(
        f"distribute={distribute!r} is not supported; use None (no strategy) or one of "
        f"{sorted(DISTRIBUTE_STRATEGIES)}."
    )


def build_in_strategy(
    build: Callable[[Any], keras.Model],
    config: Any,
    *,
    distribute: str | None,
) -> keras.Model:
    """``build(config)`` under the ``distribute`` strategy's scope, compiled with XLA when
    ``config.jit_compile`` (a ValueError if a layer cannot be)."""
    scope = make_strategy(distribute).scope() if distribute is not None else nullcontext()
    with scope:
        model = build(config)
    if config.jit_compile:
        model.jit_compile = True
        if not model.jit_compile:
            raise ValueError(
                "jit_compile=True is not supported by this network (a layer cannot be "
                "compiled with XLA); set jit_compile=False."
            )
    return model


def worker_thread_env(threads: int = 1) -> dict[str, str]:
    """Environment variables that limit a TensorFlow process to ``threads`` compute threads.

    Give them to processes that start TensorFlow, e.g. Dask workers:
    ``LocalCluster(n_workers=2, threads_per_worker=1, env=worker_thread_env(1))``, or
    ``export`` them before ``dask worker`` on a remote machine. They take effect only in a
    process where TensorFlow has not started yet.

    Examples
    --------
    >>> worker_thread_env(2)["TF_NUM_INTRAOP_THREADS"]
    '2'
    """
    value = str(check_positive_int(threads, "threads"))
    return {
        "TF_NUM_INTRAOP_THREADS": value,
        # One op at a time per process: the network's ops are small and sequential.
        "TF_NUM_INTEROP_THREADS": "1",
        "OMP_NUM_THREADS": value,
        "OPENBLAS_NUM_THREADS": value,
        "MKL_NUM_THREADS": value,
    }
