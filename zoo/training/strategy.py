"""Where training runs: the `tf.distribute` strategy, TF's CPU thread pools, and
which worker of a cluster this process is."""

import json
import os

import tensorflow as tf


def get_strategy(devices=None):
    """The `tf.distribute` strategy for this process.

    `devices` given: a `MirroredStrategy` over them (tests pass two logical CPUs).
    Else a `MultiWorkerMirroredStrategy` when `TF_CONFIG` names several workers, a
    `MirroredStrategy` over all local GPUs when there is one, else the default.
    """
    if devices:
        return tf.distribute.MirroredStrategy(devices)
    cluster = json.loads(os.environ.get("TF_CONFIG", "{}")).get("cluster", {})
    if len(cluster.get("worker", [])) > 1:
        return tf.distribute.MultiWorkerMirroredStrategy()
    gpus = tf.config.list_logical_devices("GPU")
    if gpus:
        return tf.distribute.MirroredStrategy([d.name for d in gpus])
    return tf.distribute.get_strategy()


def set_threads(intra_op=None, inter_op=None):
    """Sizes TF's CPU thread pools; call it before TF runs anything (the pools are made once).

    `intra_op`: threads one op may split its work over; `inter_op`: ops run at a time;
    None leaves TF's choice (all cores for both). On few cores, small convolutions and
    elementwise ops gain more from running side by side than from being split: (1, 2) on
    2 cores (`results/benchmarks.md` has the measurements). Returns the pools' sizes now (0: TF's default).
    """
    for name, value in (("intra_op", intra_op), ("inter_op", inter_op)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise ValueError(f"{name} must be None or an int >= 1, got {value!r}.")
    try:
        if intra_op is not None:
            tf.config.threading.set_intra_op_parallelism_threads(intra_op)
        if inter_op is not None:
            tf.config.threading.set_inter_op_parallelism_threads(inter_op)
    except RuntimeError as e:
        raise RuntimeError(f"set_threads(intra_op={intra_op}, inter_op={inter_op}) must run before "
                           f"TensorFlow runs its first op; it already has ({e}).") from e
    return (tf.config.threading.get_intra_op_parallelism_threads(),
            tf.config.threading.get_inter_op_parallelism_threads())


def worker(strategy):
    """(is_chief, task_id) of this process in a multi-worker cluster; (True, 0) otherwise."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return True, 0
    chief = resolver.task_type == "chief" or (
        resolver.task_type == "worker" and resolver.task_id == 0
        and "chief" not in resolver.cluster_spec().as_dict())
    return chief, resolver.task_id
