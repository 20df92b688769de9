"""Test setup: quiet TensorFlow, and two logical CPU devices for the mirrored path.

The logical devices must be configured before TensorFlow initializes its runtime,
so this runs at collection time, before any test touches a tensor.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

_cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(
    _cpu, [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()])

TWO_CPUS = ["/cpu:0", "/cpu:1"]


@pytest.fixture
def two_cpus():
    return TWO_CPUS
