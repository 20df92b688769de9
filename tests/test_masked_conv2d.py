import keras
import numpy as np
import pytest
import tensorflow as tf

from zoo.layers import GatedPixelCNNLayer, MaskedConv2D, VerticalConv2D
from zoo.layers.masked_conv2d import pixelcnn_mask


def test_grey_masks_exclude_or_include_the_centre():
    a = pixelcnn_mask(3, 1, 1, "A")[..., 0, 0]
    b = pixelcnn_mask(3, 1, 1, "B")[..., 0, 0]
    np.testing.assert_array_equal(a, [[1, 1, 1], [1, 0, 0], [0, 0, 0]])
    np.testing.assert_array_equal(b, [[1, 1, 1], [1, 1, 0], [0, 0, 0]])
    np.testing.assert_array_equal(pixelcnn_mask((1, 5), 1, 1, "A")[..., 0, 0], [[1, 1, 0, 0, 0]])


def test_rgb_centre_masks_order_r_then_g_then_b():
    # Maps are colour i mod 3: inputs R, G, B; outputs R, G, B, R, G, B.
    a = pixelcnn_mask(3, 3, 6, "A", color_channels=3)
    b = pixelcnn_mask(3, 3, 6, "B", color_channels=3)
    allowed_a = np.array([[0, 1, 1], [0, 0, 1], [0, 0, 0]])  # [in, out colour]: R->G, R->B, G->B
    np.testing.assert_array_equal(a[1, 1], np.tile(allowed_a, 2))
    np.testing.assert_array_equal(b[1, 1], np.tile(allowed_a + np.eye(3, dtype=int), 2))
    assert np.all(a[0] == 1) and np.all(a[1, 0] == 1) and np.all(a[1, 2] == 0) and np.all(a[2] == 0)


def test_masked_conv_output_is_the_masked_convolution():
    layer = MaskedConv2D(4, 3, "A", use_bias=False)
    x = tf.random.normal([2, 5, 5, 2], seed=1)
    y = layer(x)
    expected = tf.nn.conv2d(x, layer.kernel * layer.mask, 1, "SAME")
    np.testing.assert_allclose(y, expected, atol=1e-5)


def test_vertical_conv_sees_rows_up_to_its_own_and_all_columns_within_reach():
    layer = VerticalConv2D(1, 3)
    x = tf.random.normal([1, 5, 5, 1], seed=2)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = layer(x)[0, 2, 2, 0]
    g = tape.gradient(y, x)[0, ..., 0].numpy() != 0
    expected = np.zeros((5, 5), bool)
    expected[1:3, 1:4] = True
    np.testing.assert_array_equal(g, expected)


@pytest.mark.parametrize("kwargs,match", [
    ({"filters": 2, "kernel_size": 4}, "odd"),
    ({"filters": 2, "kernel_size": (1, 2)}, "odd"),
    ({"filters": 2, "kernel_size": 3, "mask_type": "C"}, "mask_type"),
    ({"filters": 2, "kernel_size": 3, "color_channels": 0}, "color_channels"),
])
def test_bad_masked_conv_arguments_are_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MaskedConv2D(**kwargs)


def test_gated_layer_needs_filters_divisible_by_colours():
    with pytest.raises(ValueError, match="multiple of color_channels"):
        GatedPixelCNNLayer(8, 3, color_channels=3)
    with pytest.raises(ValueError, match="odd"):
        VerticalConv2D(4, 2)


@pytest.mark.parametrize("layer", [
    MaskedConv2D(6, (1, 5), "A", color_channels=3, name="m"),
    VerticalConv2D(4, 5, name="v"),
    GatedPixelCNNLayer(6, 3, "B", color_channels=3, residual=True, dropout=0.1, name="g"),
])
def test_layers_config_round_trip(layer):
    clone = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert type(clone) is type(layer) and clone.get_config() == layer.get_config()
