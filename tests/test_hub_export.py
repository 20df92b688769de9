import json
import time
from pathlib import Path

import numpy as np
import pytest

import zoo
from zoo import hub
from zoo.models import ARM

RESULTS = Path(__file__).resolve().parents[1] / "results"


@pytest.fixture
def registry(tmp_path, monkeypatch):
    """An empty registry in a temp folder, with one small published model."""
    monkeypatch.setattr(hub, "PRETRAINED", tmp_path)
    model = ARM(image_shape=(4, 4, 1), num_levels=3, filters=8, kernel_size=3, dilations=[1, 2],
                dropout=0.1, position_embedding=True).build_for_images()
    record = {"dataset": "tiny", "preset": "smoke", "test_nats": 1.0, "test_bits_per_dim": 0.1,
              "git_commit": "abc"}
    hub.publish("arm-tiny", model, record, directory=tmp_path)
    return tmp_path, model


def images(n=5):
    return np.random.default_rng(0).integers(0, 3, (n, 4, 4, 1)).astype(np.uint8)


def test_publish_then_load_gives_the_same_model(registry):
    folder, model = registry
    assert hub.list_models() == ["arm-tiny"]
    loaded = hub.load("arm-tiny")
    np.testing.assert_array_equal(loaded.log_prob(images()), model.log_prob(images()))
    entry = json.loads((folder / "arm-tiny.json").read_text())
    assert entry["sha256"] == hub.sha256(folder / "arm-tiny.weights.h5")
    assert not [p for p in folder.iterdir() if p.name.startswith(".")], "temp files left"


def test_tampered_or_truncated_weights_are_refused(registry):
    folder, _ = registry
    weights = folder / "arm-tiny.weights.h5"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(hub.IntegrityError, match="arm-tiny.weights.h5 has sha256"):
        hub.load("arm-tiny")
    weights.write_bytes(bytes(data[: len(data) // 3]))
    with pytest.raises(hub.IntegrityError, match="refusing to load"):
        hub.load("arm-tiny")
    weights.unlink()
    with pytest.raises(hub.IntegrityError, match="missing"):
        hub.load("arm-tiny")


def test_weights_over_the_file_limit_ship_in_verified_shards(tmp_path, monkeypatch):
    monkeypatch.setattr(hub, "PRETRAINED", tmp_path)
    model = ARM(image_shape=(4, 4, 1), num_levels=3, filters=64, kernel_size=3,
                dilations=[1, 2]).build_for_images()
    record = {"dataset": "tiny", "preset": "smoke", "test_nats": 1.0, "test_bits_per_dim": 0.1,
              "git_commit": "abc"}
    with pytest.raises(ValueError, match="one weight is 0.0 MB, over the 0.01 MB"):
        hub.publish("arm-tiny", model, record, directory=tmp_path, max_file_mb=0.01)
    limit_mb = 0.047  # 0.0488 MB of weights, the largest 0.0469 MB: two shards at least
    entry = hub.publish("arm-tiny", model, record, directory=tmp_path, max_file_mb=limit_mb)
    assert entry["weights"] == "arm-tiny.weights.json" and len(entry["shards"]) >= 2
    assert hub.list_models() == ["arm-tiny"]
    np.testing.assert_array_equal(hub.load("arm-tiny").log_prob(images()), model.log_prob(images()))
    shard = tmp_path / sorted(entry["shards"])[-1]
    data = bytearray(shard.read_bytes())
    data[len(data) // 2] ^= 0xFF
    shard.write_bytes(bytes(data))
    with pytest.raises(hub.IntegrityError, match=f"{shard.name} has sha256"):
        hub.load("arm-tiny")
    hub.publish("arm-tiny", model, record, directory=tmp_path)  # small again: one whole file
    assert sorted(p.name for p in tmp_path.iterdir()) == ["arm-tiny.json", "arm-tiny.weights.h5"]


def test_arm_digits_is_shipped():
    assert "arm-digits" in zoo.list_models()


@pytest.mark.parametrize("name", zoo.list_models())
def test_shipped_model_loads_verified_fast_and_matches_its_run_record(name):
    start = time.time()
    model = zoo.load(name)
    seconds = time.time() - start
    assert seconds < 30, f"zoo.load({name!r}) took {seconds:.1f} s (a few on two quiet cores)"
    entry = hub.entry(name)
    # Its run's record: the one of its dataset and preset with its number (a variant's record,
    # e.g. runs/vae_flows/cpu-gaussian-normal-digits.json, is not named after the model).
    records = [r for r in map(json.loads, (p.read_text() for p in RESULTS.glob("runs/*/*.json")))
               if r["dataset"] == entry["dataset"] and r["preset"] == entry["preset"]
               and r["test_bits_per_dim"] == entry["test_bits_per_dim"]]
    assert len(records) == 1, f"{name}: {len(records)} records match its entry"
    assert records[0]["git_commit"] == entry["git_commit"]
    samples = model.sample(4, temperature=0.8, seed=1).numpy()
    assert samples.shape == (4, *model.image_shape) and samples.dtype == np.uint8
    assert samples.max() < model.num_levels
    # Its own samples score finite (uniform noise may not: maf-mnist's mixture base puts
    # -inf on it, its log-scales there reaching -911).
    bpd = model.bits_per_dim(samples[:3]).numpy()
    assert bpd.shape == (3,) and np.all(np.isfinite(bpd))
