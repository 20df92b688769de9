"""Causality, swept over the registry's autoregressive families (`tiny_models`,
`causality.CONDITIONALS`): the parameters of each conditional depend on earlier
positions only, with labels too, and do see their left neighbour. The families' own
tests check their receptive fields in detail (blind spot, dilations, colours)."""

import numpy as np
import pytest
import tensorflow as tf

from causality import CONDITIONALS, position_jacobian
from tiny_models import CASES, SHAPE, is_flow, is_latent_variable, labels_for
from zoo.models import MODELS

AUTOREGRESSIVE = [case for case, (name, _) in CASES.items() if not (is_flow(name) or is_latent_variable(name))]


def test_every_autoregressive_family_has_its_conditionals_named():
    assert set(CONDITIONALS) == {name for name in MODELS if not (is_flow(name) or is_latent_variable(name))}, \
        "name the network outputs of a new autoregressive model in tests/causality.py CONDITIONALS"


@pytest.mark.parametrize("case", AUTOREGRESSIVE)
def test_each_conditional_sees_earlier_positions_only(tiny_model, case):
    model = tiny_model(case)
    labels = labels_for(model, 16)
    jac = position_jacobian(model, None if labels is None else tf.constant(labels))
    d = np.arange(len(jac))
    assert jac.shape == (len(d), len(d))
    assert np.all(jac[d[:, None] <= d[None, :]] == 0), "a conditional sees its own or a later position"
    left = d[d % SHAPE[1] > 0]  # one colour: positions are pixels, i - 1 the left neighbour
    assert np.all(jac[left, left - 1] > 0), "a conditional misses its left neighbour"
