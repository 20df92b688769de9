"""`zoo.export`, swept over the registry of tiny models (`tiny_models`): each SavedModel,
served in a process where `import zoo` fails, gives the model's own `log_prob` and
`bits_per_dim` at two batch sizes, draws its `sample` for the same seed (per label for
a class-conditional model), and for flows `encode`s and `decode`s like it. All the
SavedModels are served by one subprocess (one TensorFlow start)."""

import numpy as np
import pytest

from serving import serve_many_without_zoo
from tiny_models import CASES, is_flow, labels_for, random_images


@pytest.fixture(scope="module")
def served(tmp_path_factory, tiny_model, exported):
    """case -> (model, images, labels, {call: {output: array}}) for every registry case."""
    folder = tmp_path_factory.mktemp("export")
    cases, calls = {}, {}
    for case in sorted(CASES):
        model = tiny_model(case)
        x = random_images(5, seed=7)
        labels = labels_for(model, 5)
        path = exported(case)

        def given(n, **args):
            return args if labels is None else {**args, "labels": labels[:n]}

        seeded = {"temperature": np.float32(0.7), "seed": np.int64(2)}
        calls.update({
            f"{case}.log_prob": (path, "log_prob", given(5, images=x)),
            f"{case}.bits_per_dim": (path, "bits_per_dim", given(2, images=x[:2])),
            f"{case}.sample": (path, "sample", given(3, **seeded) if labels is not None
                               else {"n": np.int32(3), **seeded}),
        })
        if is_flow(type(model).__name__):
            calls.update({
                f"{case}.encode": (path, "encode", given(5, images=x)),
                f"{case}.encode2": (path, "encode", given(2, images=x[:2])),
                f"{case}.decode": (path, "decode", given(5, z=model.encode(x, labels).numpy())),
            })
        cases[case] = (model, x, labels)
    out = serve_many_without_zoo(calls, folder)
    return {case: (*cases[case], {k.split(".", 1)[1]: v for k, v in out.items() if k.split(".")[0] == case})
            for case in cases}


@pytest.mark.parametrize("case", sorted(CASES))
def test_saved_model_serves_without_zoo_like_the_model(served, case):
    model, x, labels, out = served[case]
    given = (lambda n: ()) if labels is None else (lambda n: (labels[:n],))
    np.testing.assert_allclose(out["log_prob"]["log_prob"], model.log_prob(x, *given(5)), rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(out["bits_per_dim"]["bits_per_dim"], model.bits_per_dim(x[:2], *given(2)),
                               rtol=1e-5, atol=1e-5)
    sample = out["sample"]["images"]
    assert sample.dtype == np.uint8 and sample.shape == (3, *model.image_shape)
    np.testing.assert_array_equal(sample, model.sample(3, labels=labels[:3] if labels is not None else None,
                                                       temperature=0.7, seed=2))
    if is_flow(type(model).__name__):
        np.testing.assert_allclose(out["encode"]["z"], model.encode(x, *given(5)), rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(out["encode2"]["z"], model.encode(x[:2], *given(2)), rtol=1e-4, atol=1e-4)
        np.testing.assert_array_equal(out["decode"]["images"], x)
