import numpy as np
import pytest
import tensorflow as tf

from zoo.layers import CausalConv1D


def input_gradients(layer, length=12, channels=3):
    """|d y[t] / d x[s]| summed over channels: `[t, s]`."""
    x = tf.random.normal([1, length, channels], seed=1)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = layer(x)
    jac = tape.batch_jacobian(y, x)[0]  # [t, out, s, in]
    return np.abs(jac.numpy()).sum(axis=(1, 3))


@pytest.mark.parametrize("mask_type", ["A", "B"])
@pytest.mark.parametrize("kernel_size,dilation", [(1, 1), (3, 1), (3, 2), (5, 3)])
def test_output_sees_exactly_its_causal_window(mask_type, kernel_size, dilation):
    layer = CausalConv1D(4, kernel_size, dilation, mask_type=mask_type)
    g = input_gradients(layer)
    shift = 1 if mask_type == "A" else 0
    for t in range(g.shape[0]):
        window = {t - shift - j * dilation for j in range(kernel_size)}
        for s in range(g.shape[1]):
            if s in window:
                assert g[t, s] > 0, (t, s)
            else:
                assert g[t, s] == 0, (t, s)


def test_config_round_trip_and_bad_arguments():
    layer = CausalConv1D(8, 3, 2, mask_type="A", name="c")
    clone = CausalConv1D.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    with pytest.raises(ValueError, match="mask_type"):
        CausalConv1D(8, 3, mask_type="C")
    with pytest.raises(ValueError, match="kernel_size"):
        CausalConv1D(8, 0)


@pytest.mark.parametrize("mask_type", ["A", "B"])
def test_step_on_a_window_equals_the_full_convolution(mask_type):
    layer = CausalConv1D(5, 3, 2, mask_type=mask_type)
    x = tf.random.normal([2, 11, 3], seed=4)
    full = layer(x).numpy()
    shift = 1 if mask_type == "A" else 0
    padded = tf.pad(x, [[0, 0], [layer.window, 0], [0, 0]])
    for t in range(11):
        end = layer.window + t - shift + 1  # window ends at input position t - shift
        np.testing.assert_allclose(layer.step(padded[:, end - layer.window:end]), full[:, t], rtol=1e-5, atol=1e-5)
