"""The optimizers of the presets: Adam / Adamax / ... with warm-up, per-step decay,
Polyak averaging (Keras' EMA) and gradient clipping."""


import keras
import tensorflow as tf


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


def make_optimizer(name="adam", learning_rate=1e-3, decay=None, ema=None, clipnorm=None,
                   beta_1=None, beta_2=None, weight_decay=None, warmup=None, global_clipnorm=None):
    """A Keras optimizer by name; `decay` is a per-step exponential learning-rate
    decay, `warmup` steps of linear warm-up before it (`WarmupExponentialDecay`), `ema`
    the momentum of Polyak averaging through the optimizer's `use_ema`, `beta_1`/`beta_2`
    the Adam-family moment decays (Keras' defaults when None), `weight_decay` Keras'
    decoupled decay (each step `w -= learning_rate * weight_decay * w`), `clipnorm` /
    `global_clipnorm` Keras' gradient clipping (each variable's norm / all of them
    together)."""
    optimizers = {"adam": keras.optimizers.Adam, "adamax": keras.optimizers.Adamax,
                  "adamw": keras.optimizers.AdamW, "rmsprop": keras.optimizers.RMSprop}
    if name not in optimizers:
        raise ValueError(f"Unknown optimizer {name!r}; expected one of {sorted(optimizers)}.")
    lr = learning_rate
    if warmup is not None:
        lr = WarmupExponentialDecay(learning_rate, warmup, 1.0 if decay is None else decay)
    elif decay is not None:
        lr = keras.optimizers.schedules.ExponentialDecay(learning_rate, 1, decay)
    kwargs = {"use_ema": ema is not None, "ema_momentum": ema if ema is not None else 0.99}
    kwargs.update({k: v for k, v in (("beta_1", beta_1), ("beta_2", beta_2), ("weight_decay", weight_decay),
                                     ("clipnorm", clipnorm), ("global_clipnorm", global_clipnorm))
                   if v is not None})
    return optimizers[name](learning_rate=lr, **kwargs)
