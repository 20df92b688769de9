"""Training and evaluation through Keras: strategy, compile/fit, resume, evaluation.

Modules: `strategy` (devices, threads, workers), `pipeline` (batches), `callbacks`, `backup`,
`optimizer`, `precision` (whether a 16-bit network pays on this machine), `loop`
(`train`, `evaluate`); the public names are all here.

`train` builds the model inside the chosen `tf.distribute` strategy, compiles it
with loss = mean bits/dim, and fits with Keras' own callbacks: `BackupAndRestore`
(resume; each save atomic, `backup`), `EarlyStopping` on validation bits/dim,
`ModelCheckpoint` of the best weights, `CSVLogger` (the learning curve) and
`TensorBoard`; a non-finite loss stops the run at once (`StopOnNonFiniteLoss`) with
the last good backup kept; Ctrl-C raises `TrainingInterrupted`, naming the epochs backed
up. Progress: Keras' bar on a terminal, one plain line per epoch otherwise (`EpochLines`:
a log file stays readable text); the run says why it stopped and which epoch's weights it
keeps. `count_parameters`: the one parameter count (trainable), as logs and records state it.
"""

from zoo.training.callbacks import (EpochLines, NonFiniteLossError, ResumableEarlyStopping, StopAfterMinutes,
                                    StopOnNonFiniteLoss, TrainingInterrupted, read_history)
from zoo.training.loop import count_parameters, evaluate, initialize, train
from zoo.training.optimizer import WarmupExponentialDecay, make_optimizer
from zoo.training.precision import choose_mixed_precision, native
from zoo.training.pipeline import IN_MEMORY_BYTES, distributed_batches, epoch_batches, model_inputs
from zoo.training.strategy import get_strategy, set_threads, worker

__all__ = [
    "EpochLines", "IN_MEMORY_BYTES", "NonFiniteLossError", "ResumableEarlyStopping",
    "StopAfterMinutes", "StopOnNonFiniteLoss", "TrainingInterrupted", "WarmupExponentialDecay",
    "choose_mixed_precision", "count_parameters", "distributed_batches", "epoch_batches", "evaluate", "get_strategy", "initialize",
    "make_optimizer", "model_inputs", "native", "read_history", "set_threads", "train", "worker",
]
