"""zoo.codec with range coding (`zoo/codec/range_coding.py`) and its stream
(`zoo/codec/container.py`): exact round trips for every autoregressive family, the stream's
size against -sum log2 p, refused streams, and a decode in another process."""

import functools
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

import zoo.codec
from tiny_models import random_images, tiny
from zoo.codec import container, ordering_bits_back, range_coding
from zoo.models.distribution_augmentation import apply_transforms

ROOT = Path(__file__).resolve().parent.parent

# case -> (family, image shape, levels, overrides): odd shapes, RGB, a conditional model.
CASES = {
    "ARM": ("ARM", (3, 5, 2), 7, {}),
    "PixelCNN-rgb": ("PixelCNN", (3, 4, 3), 5, {}),
    "GatedPixelCNN-conditional": ("GatedPixelCNN", (4, 5, 1), 9, {"num_classes": 3}),
    "PixelCNNPlusPlus-rgb": ("PixelCNNPlusPlus", (4, 4, 3), 20, {}),
    "PixelCNNPlusPlus-grey": ("PixelCNNPlusPlus", (4, 6, 1), 256, {}),
    # p(x) a mixture over 4 pixel orderings: the ordering coded bits-back (ordering_bits_back)
    "PixelCNNPlusPlus-mixture": ("PixelCNNPlusPlus", (4, 4, 1), 30, {
        "augmentations": ["identity", "rot180", "flip_lr", "flip_ud"], "augmentation_mixture": True}),
}
COUNT, BATCH = 7, 3  # two full batches and one of a single image


@functools.cache
def model(case):
    name, shape, levels, overrides = CASES[case]
    return tiny(name, shape, levels, **overrides)


def labels(case):
    return np.arange(COUNT, dtype=np.int32) % 3 if "num_classes" in CASES[case][3] else None


def images(case):
    """Half drawn from the model (its typical values), half uniform (its unlikely ones)."""
    m = model(case)
    drawn = m.sample(COUNT, labels=labels(case), seed=1).numpy()
    uniform = random_images(COUNT, m.num_levels, m.image_shape, seed=2)
    return np.concatenate([drawn[:4], uniform[4:]])


@functools.cache
def stream(case):
    return zoo.codec.compress(model(case), images(case), labels(case), batch_size=BATCH, name=f"tiny-{case}")


def one_line_error(call):
    with pytest.raises(ValueError) as caught:
        call()
    message = str(caught.value)
    assert message and "\n" not in message, message
    return message


def orderings(case):
    """Transform ids of a mixture's images (every ordering in turn), else None."""
    return np.arange(COUNT, dtype=np.int32) % 4 if "augmentations" in CASES[case][3] else None


@pytest.mark.parametrize("case", CASES)
def test_cached_pass_under_teacher_forcing_gives_log_prob(case):
    # The pass the coder runs, fed the images' own values (eagerly: `choose` runs per
    # value), scores them as the parallel pass of log_prob does (a mixture's component
    # t scores t(x) as augmented_log_prob does).
    m, x, y, ids = model(case), images(case), labels(case), orderings(case)
    ordering, expected = {}, m.log_prob(x, y)
    if ids is not None:
        ordering, expected = {"augmentation": tf.constant(ids)}, m.augmented_log_prob(x, ids, y)
        x = apply_transforms(x, ids, m.augmentations).numpy()
    flat = tf.reshape(tf.constant(x, tf.int32), [COUNT, -1])
    terms = []

    def choose(d, logits):
        given = flat[:, d]
        terms.append(tf.gather(tf.nn.log_softmax(logits), given, batch_dims=1))
        return given

    with m.float32_network():
        forced = m.cached_pass(COUNT, choose, None if y is None else tf.constant(y), **ordering)
    np.testing.assert_array_equal(forced, x)
    assert len(terms) == flat.shape[1]
    np.testing.assert_allclose(tf.add_n(terms), expected, rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("case", CASES)
def test_round_trip_is_exact(case):
    decoded = zoo.codec.decompress(stream(case), model=model(case))
    if labels(case) is None:
        np.testing.assert_array_equal(decoded, images(case))
        assert decoded.dtype == np.uint8
    else:
        np.testing.assert_array_equal(decoded[0], images(case))
        np.testing.assert_array_equal(decoded[1], labels(case))


@pytest.mark.parametrize("case", CASES)
def test_the_payload_costs_minus_log2_p_up_to_the_coders_overhead(case):
    m, x = model(case), images(case)
    header, _, payload = container.unpack(stream(case))
    ideal = zoo.codec.ideal_bits(m, x, labels(case)).sum()
    slack = range_coding.OVERHEAD_BITS + range_coding.OVERHEAD_BITS_PER_VALUE * x.size
    if orderings(case) is not None:  # the first batch's orderings get no bits back: log2 T bits an image at most
        slack += np.log2(4) * min(COUNT, container.unpack(stream(case))[0]["batch_size"])
    assert ideal - 1.0 <= 8 * len(payload) <= ideal + slack, (8 * len(payload), ideal)
    assert ideal > 50  # the bound above is not trivially met by a near-empty payload
    assert zoo.codec.initial_bits(stream(case)) == 0
    label_bytes = header["label_bytes"] * header["count"]
    assert len(stream(case)) - len(payload) - label_bytes <= 48 + len(header["model"])  # header and digests


def test_a_stream_of_one_batch_round_trips():
    case = "PixelCNNPlusPlus-rgb"
    one = zoo.codec.compress(model(case), images(case), batch_size=COUNT, name="tiny")
    np.testing.assert_array_equal(zoo.codec.decompress(one, model=model(case)), images(case))
    assert container.unpack(one)[0]["batch_size"] == COUNT


def cut(data, i):
    return data[:i]


def flip(data, i, bit=0):
    return data[:i] + bytes([data[i] ^ (1 << bit)]) + data[i + 1:]


@pytest.mark.parametrize("where", [5, 12, 30, -40, -9, -1])
def test_truncated_streams_are_refused(where):
    data = stream("GatedPixelCNN-conditional")
    message = one_line_error(lambda: zoo.codec.decompress(cut(data, where), model=model("GatedPixelCNN-conditional")))
    assert "Truncated" in message


@pytest.mark.parametrize("where", [4 + 1 + 2, 20, 40, 50, -30, -12, -1])
def test_bit_flips_are_refused(where):
    data = stream("GatedPixelCNN-conditional")
    for bit in (0, 7):
        message = one_line_error(lambda: zoo.codec.decompress(flip(data, where, bit),
                                                             model=model("GatedPixelCNN-conditional")))
        assert "Corrupted" in message or "Truncated" in message, message


def test_other_streams_versions_and_weights_are_refused():
    case = "PixelCNN-rgb"
    data = stream(case)
    assert "Not a zoo.codec stream" in one_line_error(lambda: zoo.codec.decompress(b"PK\x03\x04" + data[4:]))
    for version in (1, 2, 3, 5):  # 8-byte digests, equal-prior-mass buckets, all initial words, the future
        message = one_line_error(lambda: zoo.codec.decompress(data[:4] + bytes([version]) + data[5:]))
        assert f"version {version}" in message, message
    other = tiny("PixelCNN", (3, 4, 3), 5, seed=1)
    assert "other weights" in one_line_error(lambda: zoo.codec.decompress(data, model=other))
    assert "other weights" in one_line_error(lambda: zoo.codec.decompress(data, model=model("ARM")))
    assert "not a pretrained model" in one_line_error(lambda: zoo.codec.decompress(data))


def test_probabilities_that_differ_from_the_encoders_never_decode_to_images():
    # A decoder whose weights differ slightly (its weights digest forged to match), as a
    # machine rounding differently would: the images' checksum refuses what it decodes.
    case = "PixelCNN-rgb"
    header, _, payload = container.unpack(stream(case))
    other = tiny("PixelCNN", (3, 4, 3), 5)
    for w in other.weights:
        w.assign(w.numpy() * (1 + 1e-3))
    forged = container.pack({**{k: v for k, v in header.items() if k != "payload_length"},
                             "weights_digest": container.weights_digest(other)}, None, payload)
    one_line_error(lambda: zoo.codec.decompress(forged, model=other))


def test_bad_images_labels_and_models_are_one_line_errors():
    case = "GatedPixelCNN-conditional"
    m, x, y = model(case), images(case), labels(case)
    assert "[0, 9)" in one_line_error(lambda: zoo.codec.compress(m, x + 9, y, name="t"))
    assert "shape" in one_line_error(lambda: zoo.codec.compress(m, x[:, :3], y, name="t"))
    assert "dtype" in one_line_error(lambda: zoo.codec.compress(m, x.astype(np.float32), y, name="t"))
    assert "labels" in one_line_error(lambda: zoo.codec.compress(m, x, None, name="t"))
    assert "name=" in one_line_error(lambda: zoo.codec.compress(m, x, y))
    assert "batch_size" in one_line_error(lambda: zoo.codec.compress(m, x, y, name="t", batch_size=0))
    glow = tiny("Glow")
    assert "No codec" in one_line_error(lambda: zoo.codec.compress(glow, random_images(2), name="t"))
    assert "not those of the pretrained" in one_line_error(
        lambda: zoo.codec.compress(tiny("ARM", (8, 8, 1), 17), random_images(2, 17, (8, 8, 1)), name="arm-digits"))


def test_which_models_compress():
    assert zoo.codec.can_compress("pixelcnnpp-mnist") and zoo.codec.can_compress(model("ARM"))
    assert not zoo.codec.can_compress("glow-mnist")
    assert zoo.codec.can_compress("pixelcnnpp-digits")  # a mixture over pixel orderings
    assert zoo.codec.codec_for(model("PixelCNN-rgb")) is range_coding
    assert zoo.codec.codec_for(model("PixelCNNPlusPlus-mixture")) is ordering_bits_back
    from zoo.codec import bits_back
    assert {range_coding.NAME, ordering_bits_back.NAME, bits_back.NAME} == set(container.CODECS)
    assert {"arm-digits", "pixelcnn-digits", "pixelcnnpp-mnist"} <= set(zoo.codec.compressing_models())


DECODE_ELSEWHERE = """
import sys
import numpy as np
import tensorflow as tf
tf.config.threading.set_intra_op_parallelism_threads({intra})
tf.config.threading.set_inter_op_parallelism_threads({inter})
sys.path.insert(0, {tests!r})
import test_codec
import zoo.codec
for case in {cases!r}:
    data = open(f"{{sys.argv[1]}}/{{case}}.zooc", "rb").read()
    decoded = zoo.codec.decompress(data, model=test_codec.model(case))
    np.save(f"{{sys.argv[1]}}/{{case}}.npy", decoded[0] if isinstance(decoded, tuple) else decoded)
"""


def test_a_fresh_process_with_other_thread_settings_decodes_the_same_images(tmp_path):
    cases = ["PixelCNNPlusPlus-rgb", "PixelCNNPlusPlus-mixture", "GatedPixelCNN-conditional", "ARM"]
    for case in cases:
        (tmp_path / f"{case}.zooc").write_bytes(stream(case))
    for intra, inter in [(3, 2)]:  # the encoder ran with this process's defaults
        script = DECODE_ELSEWHERE.format(intra=intra, inter=inter, tests=str(ROOT / "tests"), cases=cases)
        done = subprocess.run([sys.executable, "-c", textwrap.dedent(script), str(tmp_path)], cwd=ROOT,
                              capture_output=True, text=True, timeout=900)
        assert done.returncode == 0, done.stderr[-3000:]
        for case in cases:
            np.testing.assert_array_equal(np.load(tmp_path / f"{case}.npy"), images(case))


def test_the_command_round_trips_pngs_and_refuses_bad_input_in_one_line(tmp_path, capsys):
    from PIL import Image

    from zoo.codec.__main__ import main
    x = random_images(5, 17, (8, 8, 1), seed=4)  # arm-digits: 8x8 images of 17 levels
    (tmp_path / "in").mkdir()
    for i, image in enumerate(x):
        Image.fromarray(image[..., 0], "L").save(tmp_path / "in" / f"{i}.png")
    np.save(tmp_path / "more.npy", x[:2])
    assert main(["compress", "--model", "arm-digits", str(tmp_path / "in"), str(tmp_path / "more.npy"),
                 "-o", str(tmp_path / "x.zooc")]) == 0
    assert main(["decompress", str(tmp_path / "x.zooc"), "-o", str(tmp_path / "out")]) == 0
    decoded = [np.asarray(Image.open(tmp_path / "out" / f"{i:05d}.png")) for i in range(7)]
    np.testing.assert_array_equal(np.stack(decoded)[..., None], np.concatenate([x, x[:2]]))
    assert main(["decompress", str(tmp_path / "x.zooc"), "-o", str(tmp_path / "x.npy")]) == 0
    np.testing.assert_array_equal(np.load(tmp_path / "x.npy"), np.concatenate([x, x[:2]]))
    capsys.readouterr()
    with pytest.raises(SystemExit):
        main(["--help"])
    listed = capsys.readouterr().out.split("Pretrained models that compress:\n")[1].split()
    assert listed == zoo.codec.compressing_models() and "vae-sylvester_o-digits" in listed

    Image.fromarray(np.full((8, 8), 200, np.uint8), "L").save(tmp_path / "bright.png")
    Image.fromarray(np.zeros((8, 8, 3), np.uint8), "RGB").save(tmp_path / "rgb.png")
    for argv, says in [
        (["compress", "--model", "arm-digits", str(tmp_path / "bright.png"), "-o", str(tmp_path / "b")], "[0, 17)"),
        (["compress", "--model", "arm-digits", str(tmp_path / "rgb.png"), "-o", str(tmp_path / "b")], "mode RGB"),
        (["compress", "--model", "arm-digits", str(tmp_path / "none"), "-o", str(tmp_path / "b")], "expected"),
        (["compress", "--model", "glow-mnist", str(tmp_path / "in"), "-o", str(tmp_path / "b")], "No codec"),
        (["decompress", str(tmp_path / "more.npy"), "-o", str(tmp_path / "o")], "Not a zoo.codec stream"),
        (["decompress", str(tmp_path / "x.zooc"), "-o", str(tmp_path / "out")], "PNG-free folder"),
    ]:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert says in err and len(err.strip().splitlines()) == 1, err


# ---- python -m reproduce compress ------------------------------------------------------

def test_reproduce_compress_writes_one_record_per_measurement(tmp_path):
    """Two runs on digits: the second, of another model, adds its record and keeps the
    first's; the table is rendered from every record, each row naming its commit."""
    import json

    from reproduce import __main__ as driver
    from reproduce import compress as command

    driver.main(["compress", "arm-digits", "--out", str(tmp_path), "--limit", "24"])
    first = json.loads((tmp_path / "runs" / "compress" / "digits" / "arm-digits.json").read_text())
    assert first["images"] == 24 and first["round_trip"] == "exact" and first["git_commit"]
    assert first["stream_bits_per_dim"] > first["model_bits_per_dim"] > 0
    driver.main(["compress", "vae-gaussian-digits", "--out", str(tmp_path), "--limit", "12"])
    found = command.read_records(tmp_path)
    assert [r["name"] for r in found["digits"]["models"]] == ["arm-digits", "vae-gaussian-digits"]
    assert found["digits"]["models"][0] == first and found["digits"]["classical"]["images"] == 12
    text = (tmp_path / "compression.md").read_text()
    assert text == command.markdown(found)
    assert "| arm-digits (range) | 24 |" in text and "| vae-gaussian-digits (bits-back) | 12 |" in text
    assert "| png (image file) | 12 |" in text
