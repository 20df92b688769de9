"""Test setup: quiet TensorFlow, and two logical CPU devices for the mirrored path.

The logical devices must be configured before TensorFlow initializes its runtime,
so this runs when pytest is configured, before any test touches a tensor, in each
process that runs tests (not in pytest-xdist's controller, which only hands out files
and would print TensorFlow's start-up lines at the end of the run).
"""

import functools
import os

import pytest

TWO_CPUS = ["/cpu:0", "/cpu:1"]


def pytest_configure(config):
    if getattr(config.option, "numprocesses", None) and "PYTEST_XDIST_WORKER" not in os.environ:
        return  # xdist's controller
    from zoo._quiet import quiet_tensorflow

    quiet_tensorflow()  # with no capture around it yet in an xdist worker
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()])


@pytest.fixture
def two_cpus():
    return TWO_CPUS


@pytest.fixture(scope="session")
def tiny_model():
    """case id -> the registry's tiny model of that case (`tiny_models.tiny_case`), built
    once per session and shared by the sweeps (contract, bad input, causality, export):
    tests must not change its weights or state, and compile or train only copies."""
    from tiny_models import tiny_case

    return functools.cache(tiny_case)


@pytest.fixture(scope="session")
def exported(tiny_model, tmp_path_factory):
    """case id -> the path of `zoo.export(tiny_model(case))`, exported once per session."""
    import zoo

    folder = tmp_path_factory.mktemp("exported")
    return functools.cache(lambda case: zoo.export(tiny_model(case), folder / case))
