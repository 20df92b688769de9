"""MultiWorkerMirroredStrategy: two worker processes on 127.0.0.1 train like one process."""

import json
import os
import socket
import subprocess
import sys

import pytest


def free_ports(n):
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def reproduce(out, tf_config=None, epochs=2, extra=()):
    env = {k: v for k, v in os.environ.items() if k != "TF_CONFIG"}
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    if tf_config:
        env["TF_CONFIG"] = json.dumps(tf_config)
    cmd = [sys.executable, "-u", "-m", "reproduce", "arm", "--preset", "smoke", "--epochs", str(epochs),
           "--out", str(out), *extra]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def finish(proc, timeout=300):
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail("a worker hung")
    assert proc.returncode == 0, out[-3000:]
    return out


def test_two_workers_reach_the_same_losses_as_one_process(tmp_path):
    cluster = {"worker": [f"127.0.0.1:{p}" for p in free_ports(2)]}
    workers = [reproduce(tmp_path / "multi", {"cluster": cluster, "task": {"type": "worker", "index": i}})
               for i in range(2)]
    single = reproduce(tmp_path / "single")
    logs = [finish(p) for p in workers + [single]]
    assert all("over 447 images" in log for log in logs), "every worker evaluates the whole test split"
    multi = json.loads((tmp_path / "multi" / "runs" / "arm" / "smoke-digits.json").read_text())
    one = json.loads((tmp_path / "single" / "runs" / "arm" / "smoke-digits.json").read_text())
    for a, b in zip(multi["history"], one["history"]):
        assert a["train_bits_per_dim"] == pytest.approx(b["train_bits_per_dim"], rel=1e-5)
        assert a["val_bits_per_dim"] == pytest.approx(b["val_bits_per_dim"], rel=1e-5)
    assert multi["test_nats"] == pytest.approx(one["test_nats"], rel=1e-5)
    assert not (tmp_path / "multi" / "runs" / "arm" / "smoke-digits-worker1.json").exists()
    assert len(list((tmp_path / "multi" / "runs").rglob("*.json"))) == 1, "only the chief writes records"


def test_a_killed_worker_stops_the_other_and_both_resume(tmp_path):
    def start(extra=()):
        cluster = {"worker": [f"127.0.0.1:{p}" for p in free_ports(2)]}
        return [reproduce(tmp_path, {"cluster": cluster, "task": {"type": "worker", "index": i}},
                          epochs=4, extra=extra) for i in range(2)]

    chief, other = start()
    seen = ""
    while "epoch 1/4" not in seen:  # epoch 1's line: epoch 2 begins
        line = other.stdout.readline()
        assert line, f"worker ended early: {seen[-2000:]}"
        seen += line
    other.kill()
    try:
        out, _ = chief.communicate(timeout=240)
    except subprocess.TimeoutExpired:
        chief.kill()
        pytest.fail("the surviving worker hung instead of exiting")
    assert chief.returncode != 0 and "stopped responding" in out and "--resume" in out
    assert not (tmp_path / "runs").exists()
    logs = [finish(p) for p in start(extra=["--resume"])]
    record = json.loads((tmp_path / "runs" / "arm" / "smoke-digits.json").read_text())
    assert [h["epoch"] for h in record["history"]] == [1, 2, 3, 4]
    assert "epoch 1/4" not in logs[0], "the resumed run started over instead of continuing"
