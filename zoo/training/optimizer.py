"""The optimizers of the presets: Adam / Adamax / ... with warm-up, per-step decay,
Polyak averaging (Keras' EMA, its momentum warmed up) and gradient clipping."""


import keras
import tensorflow as tf
from keras import ops


@keras.saving.register_keras_serializable(package="zoo")
class WarmupExponentialDecay(keras.optimizers.schedules.LearningRateSchedule):
    """`learning_rate * min(1, (step + 1) / warmup_steps) * decay^step`: a linear warm-up
    (openai/glow's `epochs_warmup`) under a per-step exponential decay."""

    def __init__(self, learning_rate, warmup_steps, decay=1.0):
        if int(warmup_steps) < 1 or not 0.0 < float(decay) <= 1.0:
            raise ValueError(f"warmup_steps must be >= 1 and decay in (0, 1], got {warmup_steps}, "
                             f"{decay}.")
        self.learning_rate, self.warmup_steps = float(learning_rate), int(warmup_steps)
        self.decay = float(decay)

    def __call__(self, step):
        step = tf.cast(step, tf.float32)
        ramp = tf.minimum(1.0, (step + 1.0) / self.warmup_steps)
        return self.learning_rate * ramp * tf.pow(self.decay, step)

    def get_config(self):
        return {"learning_rate": self.learning_rate, "warmup_steps": self.warmup_steps,
                "decay": self.decay}


class WarmedPolyakAveraging:
    """Polyak averaging whose momentum warms up: after step t the average moves with
    `min(ema_momentum, (1 + t) / (10 + t))` (the `num_updates` rule of TF1's
    `ExponentialMovingAverage`). Keras' EMA uses `ema_momentum` from the second step, so
    after t steps the initial weights still hold `ema_momentum^t` of the average (0.51
    after 668 steps at 0.999): an evaluation early in training scores a blend of the
    initial and trained weights. Mixed into a Keras optimizer class ahead of it."""

    def _update_model_variables_moving_average(self, trainable_variables):
        if not self.use_ema:
            return
        t = ops.cast(self.iterations, "float32")
        momentum = ops.minimum(self.ema_momentum, (1.0 + t) / (10.0 + t))
        for var, average in zip(trainable_variables, self._model_variables_moving_average):
            if average is not None:
                m = ops.cast(momentum, var.dtype)
                average.assign(m * average + (1.0 - m) * var)


def _warmed(cls):
    """`cls` with `WarmedPolyakAveraging`, registered under the zoo's package."""
    return keras.saving.register_keras_serializable(package="zoo", name=f"Polyak{cls.__name__}")(
        type(f"Polyak{cls.__name__}", (WarmedPolyakAveraging, cls), {"__doc__": (
            f"Keras' {cls.__name__} with `WarmedPolyakAveraging`.")}))


OPTIMIZERS = {name: _warmed(cls) for name, cls in (
    ("adam", keras.optimizers.Adam), ("adamax", keras.optimizers.Adamax),
    ("adamw", keras.optimizers.AdamW), ("rmsprop", keras.optimizers.RMSprop))}


def make_optimizer(name="adam", learning_rate=1e-3, decay=None, ema=None, clipnorm=None,
                   beta_1=None, beta_2=None, weight_decay=None, warmup=None, global_clipnorm=None):
    """A Keras optimizer by name; `decay` is a per-step exponential learning-rate
    decay, `warmup` steps of linear warm-up before it (`WarmupExponentialDecay`), `ema`
    the momentum of Polyak averaging through the optimizer's `use_ema` (warmed up:
    `WarmedPolyakAveraging`), `beta_1`/`beta_2`
    the Adam-family moment decays (Keras' defaults when None), `weight_decay` Keras'
    decoupled decay (each step `w -= learning_rate * weight_decay * w`), `clipnorm` /
    `global_clipnorm` Keras' gradient clipping (each variable's norm / all of them
    together)."""
    if name not in OPTIMIZERS:
        raise ValueError(f"Unknown optimizer {name!r}; expected one of {sorted(OPTIMIZERS)}.")
    lr = learning_rate
    if warmup is not None:
        lr = WarmupExponentialDecay(learning_rate, warmup, 1.0 if decay is None else decay)
    elif decay is not None:
        lr = keras.optimizers.schedules.ExponentialDecay(learning_rate, 1, decay)
    kwargs = {"use_ema": ema is not None, "ema_momentum": ema if ema is not None else 0.99}
    kwargs.update({k: v for k, v in (("beta_1", beta_1), ("beta_2", beta_2), ("weight_decay", weight_decay),
                                     ("clipnorm", clipnorm), ("global_clipnorm", global_clipnorm))
                   if v is not None})
    return OPTIMIZERS[name](learning_rate=lr, **kwargs)
