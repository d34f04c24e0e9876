"""`seqgen sweep`: the sweep file's checks (no Ray needed), the message without Ray, and real
sweeps on Ray: a local instance with ASHA, a two-node cluster on loopback, and a driver killed
mid-sweep that resumes without re-running finished trials."""

import glob
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
from live_server import free_port

from seqgen.errors import ConfigError
from seqgen.sweep.spec import SweepSpec

ROOT = Path(__file__).resolve().parent.parent
DINOS = ROOT / "corpora" / "dinos.txt"
# tiny RNNs on dinosaur names: about a second per trial once the kernels are cached
TINY = {"corpus": str(DINOS), "mode": "items", "batch_size": 8, "hidden_size": 16, "cell": "rnn",
        "tokenizer_options": {"lower": True}}


def toml_value(value):
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return json.dumps(value)  # strings, numbers, booleans: TOML writes them as JSON does


def write_sweep(path, settings=None, train=None, space=None):
    lines = [f"{k} = {toml_value(v)}" for k, v in (settings or {}).items()]
    lines += ["[train]"] + [f"{k} = {toml_value(v)}" for k, v in (train or {}).items()]
    lines += ["[space]"] + [f"{k} = {toml_value(v)}" for k, v in (space or {}).items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def spec(settings=None, train=None, space=None):
    return SweepSpec.parse({**(settings or {}), "train": {**TINY, **(train or {})}, "space": space or {}}, "s.toml")


# ---------------------------------------------------------------------------------- the sweep file
def test_spec_makes_paths_absolute_and_counts_trials():
    s = spec({"samples": 3}, {"corpus": "corpora/dinos.txt", "option": {"lower": True}},
             {"cell": {"grid": ["rnn", "gru"]}, "lr": {"loguniform": [1e-3, 1e-2]}, "option.lower": {"choice": [True]}})
    assert Path(s.train["corpus"]).is_absolute()
    assert s.train["tokenizer_options"] == {"lower": True}
    assert s.trials == 6


@pytest.mark.parametrize("settings, train, space, message", [
    ({}, {}, {"hidden_sise": {"choice": [8]}}, "s.toml: space.hidden_sise: unknown setting"),
    ({}, {}, {"hidden_size": {"choice": [8, 0]}}, "s.toml: space.hidden_size: choice value 0: "),
    ({}, {}, {"hidden_size": {"uniform": [8, 64]}}, "s.toml: space.hidden_size: uniform value 36.056: "),
    ({}, {}, {"lr": {"loguniform": [0, 1]}}, "s.toml: space.lr: loguniform needs low > 0"),
    ({}, {}, {"lr": {"uniform": [0.1, 0.01]}}, "s.toml: space.lr: uniform needs low < high"),
    ({}, {}, {"lr": {"normal": [0, 1]}}, "s.toml: space.lr: give exactly one of grid, choice"),
    ({}, {}, {"dropout": {"choice": [0.0, 1.5]}}, "s.toml: space.dropout: choice value 1.5: "),
    ({}, {"batch_size": -1}, {}, "s.toml: train.batch_size: "),
    ({}, {"output": "x.npz"}, {}, "s.toml: train.output: not a sweep setting"),
    ({}, {"valid_fraction": 0}, {}, "s.toml: train.valid_fraction: trials are compared by validation loss"),
    ({"samples": 0}, {}, {}, "s.toml: samples: "),
    ({"sampels": 2}, {}, {}, "s.toml: sampels: unknown setting"),
    ({"search": "optuna"}, {}, {"cell": {"grid": ["rnn"]}}, "s.toml: space: Optuna draws its own points"),
    ({"samples": 10_000}, {}, {"cell": {"grid": ["rnn", "gru"]}}, "s.toml: samples: 20,000 trials"),
])
def test_a_bad_sweep_file_is_one_line_naming_file_and_field(settings, train, space, message):
    with pytest.raises(ConfigError) as e:
        spec(settings, train, space)
    assert str(e.value).startswith(message)
    assert "\n" not in str(e.value)


def test_cli_bad_sweep_file_exits_1_in_one_line(cli_run, tmp_path):
    path = write_sweep(tmp_path / "s.toml", train=TINY, space={"layers": {"randint": [0, 3]}})
    result = cli_run("sweep", path, "-o", tmp_path / "out")
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [f"Error: {path}: space.layers: randint value 0: "
                                                  "Input should be greater than or equal to 1"]
    assert not (tmp_path / "out").exists()
    (tmp_path / "bad.toml").write_text("samples = = 2\n")
    result = cli_run("sweep", tmp_path / "bad.toml")
    assert result.exit_code == 2 and "not valid TOML" in result.output and "Traceback" not in result.output


def test_without_ray_the_command_says_how_to_install_it(cli_run, tmp_path, monkeypatch):
    for name in [m for m in sys.modules if m == "ray" or m.startswith("ray.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now raises ImportError
    path = write_sweep(tmp_path / "s.toml", train=TINY)
    result = cli_run("sweep", path)
    assert result.exit_code == 1
    assert result.output == "Error: seqgen sweep needs Ray Tune, an optional extra: pip install 'seqgen[ray]'\n"
    assert spec().trials == 1  # the sweep file is still checked without Ray


# ---------------------------------------------------------------------------------- sweeps on Ray
def read_rows(out):
    return json.loads((out / "results.json").read_text())["rows"]


@pytest.mark.slow
def test_local_sweep_with_asha_reports_every_evaluation_and_keeps_the_best(cli_run, tmp_path):
    """Three learning rates, one trial at a time: the large rate leads at every rung. Ray may
    start the trials in any order, and a trial alone at a rung always goes on, so a small rate
    that runs first finishes; one that runs after the large rate trails it and is stopped. Ray
    delivers a stop a report or two late, so a stopped trial has a few evaluations, never 20."""
    path = write_sweep(tmp_path / "s.toml", {"scheduler": "asha", "grace_evals": 1, "reduction_factor": 2,
                                             "concurrency": 1},
                       {**TINY, "steps": 200, "eval_every": 10}, {"lr": {"grid": [0.02, 0.0003, 0.0001]}})
    out = tmp_path / "out"
    result = cli_run("sweep", path, "-o", out)
    assert result.exit_code == 0, result.output
    rows = read_rows(out)
    assert [r["lr"] for r in rows] == [0.02, 0.0003, 0.0001] and rows[0]["status"] == "finished"
    stopped = [r for r in rows[1:] if r["status"] == "stopped early"]
    assert stopped and all(1 <= r["evals"] < 20 for r in stopped)
    assert rows[0]["evals"] == 20 and all(r["evals"] == 20 for r in rows if r["status"] == "finished")
    assert rows[0]["step"] == 200 and all(r["threads"] == 1 for r in rows)  # each trial's BLAS share
    from seqgen.storage import checkpoint

    best = checkpoint.load(out / "best.npz")
    assert best.training["best_valid"] == rows[0]["valid_loss"]
    assert best.training["step"] == rows[0]["best_step"]
    history = [h["valid_loss"] for h in best.training["history"]]
    assert min(history) == rows[0]["valid_loss"]
    csv_lines = (out / "results.csv").read_text().splitlines()
    assert csv_lines[0].startswith("trial,status,lr,valid_loss,") and len(csv_lines) == 4
    assert f"best: trial {rows[0]['trial']} (lr=0.02)" in result.output
    assert "| 0.02 | " in result.output  # the table


def stop_group(process, timeout=10):
    """Stop a process we started in its own session, and everything it started."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout)
            time.sleep(1)  # its children get the same signal; give them a moment
        except subprocess.TimeoutExpired:
            continue


NODES = """
import json, sys, time
import ray
ray.init(address=sys.argv[1], logging_level="WARNING", log_to_driver=False)
deadline = time.monotonic() + 60
while len([n for n in ray.nodes() if n["Alive"]]) < 2 and time.monotonic() < deadline:
    time.sleep(0.5)
print(json.dumps({n["NodeID"]: [k for k in n["Resources"] if k.endswith("_node")] for n in ray.nodes() if n["Alive"]}))
"""


@pytest.fixture
def two_nodes(tmp_path):
    """A Ray cluster of two nodes on loopback, 1 CPU each, each with its own resource tag, and
    token authentication with a fresh token. Yields the address, the environment that reaches
    the cluster (the token) and {node id: tag}. Ray keeps its first connection's settings for
    the life of a process, so everything that talks to this cluster runs in a subprocess."""
    port = free_port()
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "token",
           "RAY_AUTH_TOKEN": secrets.token_hex(16)}
    ray = str(Path(sys.executable).parent / "ray")
    temp = tempfile.mkdtemp(prefix="rs", dir="/tmp")  # short: Ray's socket paths must fit 107 bytes
    common = ["--node-ip-address", "127.0.0.1", "--num-cpus", "1", "--block", "--disable-usage-stats"]
    nodes = []
    try:
        nodes.append(subprocess.Popen(
            [ray, "start", "--head", "--port", str(port), "--include-dashboard", "false", "--temp-dir", temp,
             "--resources", '{"head_node": 1}', *common],
            env=env, start_new_session=True, stdout=open(tmp_path / "head.log", "wb"), stderr=subprocess.STDOUT))
        time.sleep(3)
        nodes.append(subprocess.Popen(
            [ray, "start", "--address", f"127.0.0.1:{port}", "--resources", '{"second_node": 1}',
             "--dashboard-agent-listen-port", str(free_port()), "--metrics-export-port", str(free_port()), *common],
            env=env, start_new_session=True, stdout=open(tmp_path / "node.log", "wb"), stderr=subprocess.STDOUT))
        listed = subprocess.run([sys.executable, "-c", NODES, f"127.0.0.1:{port}"], env=env, capture_output=True,
                                text=True, timeout=120)
        assert listed.returncode == 0, listed.stderr[-2000:]
        tags = {node: tag for node, [tag] in json.loads(listed.stdout).items()}
        assert sorted(tags.values()) == ["head_node", "second_node"], (tmp_path / "node.log").read_text()[-2000:]
        yield f"127.0.0.1:{port}", env, tags
    finally:
        for node in reversed(nodes):
            stop_group(node)
        shutil.rmtree(temp, ignore_errors=True)


@pytest.mark.slow
def test_sweep_on_a_two_node_cluster_runs_trials_on_both_nodes(two_nodes, tmp_path):
    address, env, tags = two_nodes
    path = write_sweep(tmp_path / "s.toml", {"concurrency": 2}, {**TINY, "steps": 20, "eval_every": 10},
                       {"lr": {"grid": [0.01, 0.002]}})
    out = tmp_path / "out"
    run = subprocess.run([sys.executable, "-m", "seqgen", "sweep", str(path), "-o", str(out), "--address", address,
                          "-q"], env=env, capture_output=True, text=True, timeout=180)
    assert run.returncode == 0, run.stderr[-2000:]
    rows = read_rows(out)
    assert [r["status"] for r in rows] == ["finished", "finished"]
    assert sorted(tags[r["node"]] for r in rows) == ["head_node", "second_node"]


def experiment_status(out):
    """trial id -> status in Ray's saved experiment state ({} before the first save)."""
    files = glob.glob(str(out / "trials" / "experiment_state-*.json"))
    try:
        data = json.loads(Path(files[0]).read_text()) if files else {"trial_data": []}
    except (OSError, ValueError):  # being replaced this instant
        return {}
    return {t["trial_id"]: t["status"] for t in (json.loads(item[0]) for item in data["trial_data"])}


@pytest.mark.slow
def test_a_killed_sweep_resumes_without_rerunning_finished_trials(tmp_path):
    from seqgen import sweep

    # trials long enough (several seconds each, hidden size 256) that the kill lands before a
    # second one ends, even though Ray writes the experiment state a moment after a trial finishes
    path = write_sweep(tmp_path / "s.toml", {"concurrency": 1},
                       {**TINY, "hidden_size": 256, "steps": 600, "eval_every": 200},
                       {"lr": {"grid": [0.02, 0.01, 0.005]}})
    out = tmp_path / "out"
    driver = subprocess.Popen([sys.executable, "-m", "seqgen", "sweep", str(path), "-o", str(out), "-q"],
                              start_new_session=True, stdout=subprocess.DEVNULL,
                              stderr=open(tmp_path / "driver.log", "wb"))
    try:
        deadline = time.monotonic() + 90
        while "TERMINATED" not in experiment_status(out).values():
            assert driver.poll() is None, (tmp_path / "driver.log").read_text()
            assert time.monotonic() < deadline, "no trial finished in time"
            time.sleep(0.2)
        driver.send_signal(signal.SIGKILL)
        driver.wait(10)
    finally:
        stop_group(driver)  # the driver's private Ray instance goes with it
    finished = [t for t, status in experiment_status(out).items() if status == "TERMINATED"]
    assert 1 <= len(finished) < 3
    reports = {t: (out / "trials" / f"trial_{t}" / "result.json").read_bytes() for t in finished}
    weights = {t: np.load(out / "trials" / f"trial_{t}" / "model.npz")["param/l0.Waa"] for t in finished}

    from seqgen.cli.train import _read_toml

    spec_ = SweepSpec.parse(_read_toml(path), str(path))
    before = signal.getsignal(signal.SIGINT)  # default_int_handler, or SIG_IGN in a background job
    result = sweep.run(spec_, out)
    assert result.resumed and result.complete
    assert signal.getsignal(signal.SIGINT) is before  # Ctrl-C works as before the sweep
    assert sorted(r["lr"] for r in result.rows) == [0.005, 0.01, 0.02]
    assert all(r["status"] == "finished" and r["step"] == 600 for r in result.rows)
    for t in finished:  # not trained again: no new reports, the same weights
        assert (out / "trials" / f"trial_{t}" / "result.json").read_bytes() == reports[t]
        np.testing.assert_array_equal(np.load(out / "trials" / f"trial_{t}" / "model.npz")["param/l0.Waa"], weights[t])
