"""The private Keras and TensorFlow APIs the code relies on (docs/design.md, "Private
APIs"): each still exists and does what the zoo uses it for. An upgrade that removes or
changes one fails here, naming it and where it is used, instead of deep inside a
training run or an evaluation."""

import inspect

import keras
import numpy as np
import pytest
import tensorflow as tf


def gone(api, used_by, error):
    pytest.fail(f"{api} is gone or changed in Keras {keras.__version__} / TensorFlow {tf.__version__} "
                f"({type(error).__name__}: {error}); {used_by} relies on it: see docs/design.md, "
                f"'Private APIs', for why and what to replace it with.", pytrace=False)


def test_autocast_scope_sets_and_clears_the_dtype_variables_read_in():
    used_by = "DensityModel.float32_network (zoo/models/base.py)"
    try:
        from keras.src.backend import AutocastScope

        weight = keras.Variable(np.ones(2, np.float32))
        with AutocastScope("bfloat16"):
            cast = weight.value.dtype
            with AutocastScope(None):
                cleared = weight.value.dtype
        assert (cast, cleared) == (tf.bfloat16, tf.float32), (cast, cleared)
    except (ImportError, AttributeError, TypeError, AssertionError) as e:
        gone("keras.src.backend.AutocastScope", used_by, e)


def test_flatten_layers_walks_nested_layers():
    used_by = "DensityModel.float32_network (zoo/models/base.py) and tests/test_fidelity.py"

    class Outer(keras.layers.Layer):
        def __init__(self):
            super().__init__()
            self.inner = keras.Sequential([keras.layers.Dense(2)])

    class Model(keras.Model):
        def __init__(self):
            super().__init__()
            self.outer = Outer()

    model = Model()
    try:
        found = list(model._flatten_layers(include_self=True))
        assert found[0] is model and model.outer in found and model.outer.inner.layers[0] in found, found
    except (AttributeError, TypeError, AssertionError) as e:
        gone("keras.Layer._flatten_layers(include_self=True) (recursive)", used_by, e)


def test_fit_under_a_strategy_builds_through_maybe_symbolic_build():
    used_by = "DensityModel._maybe_symbolic_build (zoo/models/base.py), which builds from zeros"
    calls = []

    class Model(keras.Model):
        def __init__(self):
            super().__init__()
            self.dense = keras.layers.Dense(1)

        def call(self, x):
            return self.dense(x)

        def _maybe_symbolic_build(self, iterator=None, data_batch=None):
            calls.append((iterator, data_batch))
            return super()._maybe_symbolic_build(data_batch=(tf.zeros([1, 3]), tf.zeros([1, 1])))

    try:
        from keras.src.backend.tensorflow.trainer import TensorFlowTrainer

        assert list(inspect.signature(TensorFlowTrainer._maybe_symbolic_build).parameters) == [
            "self", "iterator", "data_batch"]
        with tf.distribute.MirroredStrategy(["/cpu:0"]).scope():
            model = Model()
            model.compile(optimizer="sgd", loss="mse")
        model.fit(np.ones([4, 3], np.float32), np.ones([4, 1], np.float32), batch_size=2, verbose=0)
        assert calls and model.built, calls
    except (ImportError, AttributeError, TypeError, AssertionError) as e:
        gone("the TF trainer's Model._maybe_symbolic_build(iterator, data_batch), called by fit", used_by, e)


def test_optimizer_updates_its_averages_through_the_overridden_hook():
    used_by = "WarmedPolyakAveraging (zoo/training/optimizer.py)"
    calls = []

    class SGD(keras.optimizers.SGD):
        def _update_model_variables_moving_average(self, trainable_variables):
            calls.append(list(trainable_variables))
            super()._update_model_variables_moving_average(trainable_variables)

    weight = keras.Variable(np.zeros(2, np.float32))
    optimizer = SGD(0.1, use_ema=True)
    try:
        optimizer.build([weight])
        optimizer.apply_gradients([(tf.ones(2), weight)])
        assert len(calls) == 1 and calls[0][0] is weight, calls
        assert len(optimizer._model_variables_moving_average) == 1
    except (AttributeError, TypeError, AssertionError) as e:
        gone("keras.optimizers.Optimizer._update_model_variables_moving_average and "
             "_model_variables_moving_average", used_by, e)


def test_convert_variables_to_constants_v2_freezes_a_traced_function():
    used_by = "reproduce/bench/flops.py (FLOPs of graphs whose nested functions leave shapes unknown)"
    weight = tf.Variable(tf.ones([3, 2]))
    traced = tf.function(lambda x: tf.matmul(x, weight)).get_concrete_function(tf.TensorSpec([4, 3]))
    try:
        from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

        frozen = convert_variables_to_constants_v2(traced, lower_control_flow=False, aggressive_inlining=True)
        ops = {op.type for op in frozen.graph.get_operations()}
        assert "ReadVariableOp" not in ops and "MatMul" in ops, ops
        np.testing.assert_array_equal(frozen(tf.ones([4, 3]))[0], np.full([4, 2], 3.0))
    except (ImportError, AttributeError, TypeError, AssertionError) as e:
        gone("tensorflow.python.framework.convert_to_constants.convert_variables_to_constants_v2", used_by, e)
