"""`mannlab sweep`: sweep files, results, and trials on a local Ray.

The fast tests check the sweep file's validation and the results table
without Ray. The slow ones start Ray: a sweep of 2 configurations x 2 seeds
whose table must match the trials' own seeds.json; a trial whose worker is
killed (kill -9, its PID read from what Ray recorded of it) and whose sweep
is then interrupted, run again, and compared with an uninterrupted run.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from safetensors.numpy import load_file

import mannlab.sweep
from helpers import tiny_config
from mannlab import api
from mannlab.cli import main
from mannlab.sweep import SweepError, load_plan, results, run_sweep
from mannlab.sweep.ray_runner import make_scheduler
from mannlab.sweep.spec import SHIPPED_SWEEPS

ROOT = Path(__file__).resolve().parents[1]


def write_base(tmp_path: Path, name: str = "tiny.yaml", **train) -> Path:
    path = tmp_path / name
    config = tiny_config(log_images=False, **train).model_dump(mode="json")
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def write_sweep(tmp_path: Path, text: str, name: str = "sweep.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


# ---------------------------------------------------------------- the sweep file
def test_plan_crosses_bases_variants_grid_samples_and_seeds(tmp_path):
    write_base(tmp_path)
    write_base(tmp_path, "other.yaml", max_steps=80)
    path = write_sweep(tmp_path, """
base: [tiny.yaml, other.yaml]
set: {train.eval_size: 8}
variants: [{}, {model.shift_range: 2}]
grid:
  model.memory_init: [constant, learned]
search:
  train.learning_rate: {loguniform: [1.0e-5, 1.0e-3]}
  train.batch_size: {choice: [1, 2]}
samples: 3
seeds: 2
""")
    plan = load_plan(path)
    assert len(plan.configurations) == 2 * 2 * 2 * 3
    assert len(plan.trials) == 2 * len(plan.configurations)
    assert len({c.id for c in plan.configurations}) == len(plan.configurations)
    rates = {c.values["train.learning_rate"] for c in plan.configurations}
    assert len(rates) == 3 and all(1e-5 <= r <= 1e-3 for r in rates)
    for c in plan.configurations:
        assert c.config.train.eval_size == 8
        assert c.config.model.memory_init == c.values["model.memory_init"]
        assert c.config.model.shift_range == c.values.get("model.shift_range", 1)
        assert c.config.train.learning_rate == c.values["train.learning_rate"]
        assert c.config.train.batch_size == c.values["train.batch_size"]
        assert c.config.train.max_steps == (80 if c.base == "other.yaml" else 40)
        assert c.label.startswith(c.base)
    # seeds: the base config's seed (3), then the next
    assert [t.seed for t in plan.trials[:2]] == [3, 4]
    assert [t.config.seed for t in plan.trials[:2]] == [3, 4]
    assert plan.trials[0].id == f"{plan.configurations[0].id}-s3"
    # the same file gives the same plan (random draws included)
    assert load_plan(path).fingerprint() == plan.fingerprint()
    assert load_plan(path).configurations == plan.configurations


def test_shipped_sweeps_are_valid():
    files = sorted(SHIPPED_SWEEPS.glob("*.yaml"))
    assert [p.stem for p in files] and "ntm-memory-init" in [p.stem for p in files]
    plan = load_plan("ntm-memory-init")
    assert {c.config.model.memory_init for c in plan.configurations} == {
        "constant", "learned", "random"}
    assert {c.config.task.name for c in plan.configurations} == {"copy", "associative_recall"}
    assert len(plan.trials) == 2 * 3 * 10
    options = [(c.config.model.content_masking, c.config.model.deallocation_erase,
                c.config.model.link_sharpness) for c in load_plan("dnc-csordas").configurations]
    assert options == [(False, False, False), (True, False, False), (False, True, False),
                       (False, False, True), (True, True, True)]
    for p in files:
        load_plan(p)


BAD_SWEEPS = [
    ("grids: {model.memory_init: [constant]}\n", "grids: Extra inputs are not permitted"),
    ("grid: {model.hidden_size: [8, 16]}\n",
     "grid.model.hidden_size: the base config tiny.yaml has no field model.hidden_size"),
    ("grid: {model.memory_init: [constant, bogus]}\n", "model.memory_init: Input should be"),
    ("grid: {model.memory_init: []}\n", "grid: model.memory_init: an empty list of values"),
    ("grid: {model.memory_size: [8, 8]}\n", "model.memory_size: a value is listed twice"),
    ("search: {train.learning_rate: {loguniform: [1.0e-3, 1.0e-4]}}\nsamples: 2\n",
     "search.train.learning_rate: loguniform needs 0 < low < high (got [0.001, 0.0001])"),
    ("search: {train.learning_rate: {loguniform: [0, 1.0e-4]}}\nsamples: 2\n",
     "loguniform needs 0 < low < high"),
    ("search: {train.momentum: {uniform: [0.5, 0.1], choice: [1]}}\nsamples: 2\n",
     "give exactly one of loguniform, uniform, randint, choice (got uniform, choice)"),
    ("search: {train.learning_rate: {loguniform: [1.0e-5, 1.0e-4]}}\n",
     "search and samples go together"),
    ("search: {train.batch_size: {randint: [1, 4]}}\nsamples: 0\n",
     "samples: Input should be greater than or equal to 1"),
    ("set: {train.max_steps: 10}\ngrid: {train.max_steps: [10, 20]}\n",
     "train.max_steps is given under both set and grid"),
    ("grid: {seed: [1, 2]}\n", "grid.seed: seeds are the sweep's `seeds` field"),
    ("seeds: 0\n", "seeds: seeds must be >= 1 (got 0)"),
    ("seeds: [1, 1]\n", "seeds: give distinct seeds (got [1, 1])"),
    ("lengths: [0, 5]\n", "lengths must be positive"),
    ("resources: {cpus: 0}\n", "resources.cpus: Input should be greater than 0"),
    ("asha: {grace_period: 10, reduction_factor: 1}\n",
     "asha.reduction_factor: Input should be greater than 1"),
    ("set: {train.max_steps: 2e5}\n", "train.max_steps: Input should be a valid integer"),
]


@pytest.mark.parametrize("extra, expected", BAD_SWEEPS)
def test_malformed_sweeps_are_one_line_errors(tmp_path, extra, expected):
    write_base(tmp_path)
    path = write_sweep(tmp_path, "base: tiny.yaml\n" + extra)
    with pytest.raises(SweepError) as err:
        load_plan(path)
    message = str(err.value)
    assert expected in message and message.startswith(str(path)), message
    assert "\n" not in message


@pytest.mark.parametrize("text, expected", [
    ("", "expected a mapping with a base config"),
    ("- base\n", "expected a mapping with a base config (base: ntm-copy), got list"),
    ("base: nowhere.yaml\n", "base: config file not found: nowhere.yaml"),
    ("base: tiny.yaml\nbase: tiny.yaml\n", "duplicate key 'base' on line 2"),
    ("base: [tiny.yaml, tiny.yaml]\n", "a base config is listed twice"),
    ("base: tiny.yaml\nseeds: [1, 2\n", "not valid YAML"),
])
def test_unreadable_sweep_files(tmp_path, text, expected):
    write_base(tmp_path)
    path = write_sweep(tmp_path, text)
    with pytest.raises(SweepError, match=None) as err:
        load_plan(path)
    assert expected in str(err.value) and "\n" not in str(err.value)


def test_cli_reports_a_bad_sweep_in_one_line(tmp_path, capsys):
    write_base(tmp_path)
    path = write_sweep(tmp_path, "base: tiny.yaml\ngrid: {model.nope: [1]}\n")
    assert main(["sweep", str(path), "--dir", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("mannlab: error: ") and "grid.model.nope" in err
    assert "\n" not in err
    assert not (tmp_path / "out").exists()
    assert main(["sweep", "no-such-sweep", "--dir", str(tmp_path / "out")]) == 2
    assert "sweep file not found: no-such-sweep" in capsys.readouterr().err


def test_address_and_storage_go_together(tmp_path):
    write_base(tmp_path)
    path = write_sweep(tmp_path, "base: tiny.yaml\n")
    with pytest.raises(SweepError, match="--storage /shared: only with --address"):
        run_sweep(path, tmp_path / "a", storage="/shared")
    with pytest.raises(SweepError, match="--address 10.0.0.1:6379: give --storage"):
        run_sweep(path, tmp_path / "b", address="10.0.0.1:6379")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_an_address_where_no_ray_answers_is_one_line_and_writes_nothing(tmp_path):
    write_base(tmp_path)
    path = write_sweep(tmp_path, "base: tiny.yaml\n")
    with socket.socket() as closed:  # a loopback port nothing listens on
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    with pytest.raises(SweepError, match=f"--address 127.0.0.1:{port}: no Ray cluster answers "
                                         "there"):
        run_sweep(path, tmp_path / "out", address=f"127.0.0.1:{port}", storage="/shared")
    assert not (tmp_path / "out").exists()


def test_missing_ray_says_how_to_install(tmp_path, monkeypatch):
    write_base(tmp_path)
    path = write_sweep(tmp_path, "base: tiny.yaml\n")
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` fails as if not installed
    monkeypatch.delitem(sys.modules, "mannlab.sweep.ray_runner", raising=False)
    monkeypatch.delattr(mannlab.sweep, "ray_runner", raising=False)
    with pytest.raises(SweepError) as err:
        run_sweep(path, tmp_path / "out")
    assert str(err.value) == "mannlab sweep needs Ray: pip install 'mannlab[sweep]'"


def test_a_directory_of_another_sweep_is_refused(tmp_path):
    write_base(tmp_path)
    first = load_plan(write_sweep(tmp_path, "base: tiny.yaml\nseeds: 2\n", "one.yaml"))
    out = tmp_path / "out"
    out.mkdir()
    results.write_results(out, results.new_sweep_json(first, str(out), "ray"))
    path = write_sweep(tmp_path, "base: tiny.yaml\nseeds: 2\nset: {train.max_steps: 30}\n")
    with pytest.raises(SweepError, match=r"holds another sweep .*c0 train.max_steps: 40 there, "
                                         r"30 now\); choose another --dir"):
        run_sweep(path, out)


def test_a_sweep_directory_made_before_a_config_field_was_added_is_the_same_sweep(tmp_path):
    """A field added to mannlab since the sweep ran, with its default, changes
    no trial: the directory is accepted (read with today's defaults) and its
    sweep.json brought up to date; a stored value that differs is still refused."""
    write_base(tmp_path)
    path = write_sweep(tmp_path, "base: tiny.yaml\nseeds: 2\n")
    plan = load_plan(path)
    out = tmp_path / "out"
    out.mkdir()
    data = results.new_sweep_json(plan, str(out), "ray")
    for trial in data["trials"]:
        trial["status"] = "not_converged"  # done: nothing left to run, no Ray
    for c in data["configurations"]:
        del c["config"]["train"]["score_train_limit"]  # as if the field were new
    data["fingerprint"] = "0123456789abcdef"
    del data["sequences"]  # sweep.json before it recorded them
    results.write_results(out, data)
    assert run_sweep(path, out).data["fingerprint"] == plan.fingerprint()
    assert results.read_sweep_json(out)["fingerprint"] == plan.fingerprint()

    data["configurations"][0]["config"]["train"]["max_steps"] = 41
    results.write_results(out, data)
    with pytest.raises(SweepError, match=r"c0 train.max_steps: 41 there, 40 now"):
        run_sweep(path, out)


def test_trials_a_killed_driver_did_not_record_are_read_from_their_run_directories(tmp_path):
    """The driver was killed (kill -9, the machine went down) after trials
    finished and were copied, before sweep.json said so: running again reads
    them from their run directories and, all done, runs nothing (no Ray)."""
    write_base(tmp_path)
    path = write_sweep(tmp_path, "base: tiny.yaml\nseeds: 2\n")
    plan = load_plan(path)
    out = tmp_path / "out"
    out.mkdir()
    results.write_results(out, results.new_sweep_json(plan, str(out), "ray"))
    for seed in (3, 4):
        run = out / "trials" / f"c0-s{seed}"
        run.mkdir(parents=True)
        (run / "seeds.json").write_text(json.dumps([{
            "seed": seed, "steps": 40, "seconds": 1.0, "heldout": {"bits_wrong": 1.0},
            "converged": {"step": 20, "seconds": 0.5} if seed == 3 else None,
            "diverged": None}]))
    again = run_sweep(path, out, log=lambda *a: None)
    assert again.ran == 0 and not again.pending
    assert [t["status"] for t in again.data["trials"]] == ["converged", "not_converged"]
    saved = json.loads((out / "sweep.json").read_text())
    assert [t["status"] for t in saved["trials"]] == ["converged", "not_converged"]
    assert saved["summary"][0]["converged"] == 1


# ---------------------------------------------------------------- results
def test_summary_medians_and_quartiles_per_configuration(tmp_path):
    write_base(tmp_path)
    plan = load_plan(write_sweep(tmp_path, "base: tiny.yaml\nseeds: 4\nlengths: [3]\n"))
    data = results.new_sweep_json(plan, str(tmp_path), "ray")
    outcomes = [  # seed 3..6
        {"status": "converged", "converged": {"step": 100, "seconds": 1.0},
         "heldout": {"bits_wrong": 0.0}, "eval": {"3": {"bits_wrong": 0.5}}},
        {"status": "converged", "converged": {"step": 300, "seconds": 3.0},
         "heldout": {"bits_wrong": 0.25}, "eval": {"3": {"bits_wrong": 1.5}}},
        {"status": "not_converged", "heldout": {"bits_wrong": 2.0},
         "eval": {"3": {"bits_wrong": 4.0}}},
        {"status": "diverged", "diverged": {"step": 7}, "heldout": {"bits_wrong": 9.0}},
    ]
    for trial, outcome in zip(data["trials"], outcomes):
        trial.update(outcome)
    (s,) = results.summarise(data)
    assert (s["converged"], s["diverged"], s["not_converged"], s["trials"]) == (2, 1, 1, 4)
    assert s["steps_to_converge"] == {"median": 200.0, "q1": 150.0, "q3": 250.0, "n": 2}
    assert s["seconds_to_converge"]["median"] == 2.0
    assert s["heldout"] == 0.25  # median of the three that finished without diverging
    assert s["eval"] == {"3": 1.5}
    results.write_results(tmp_path, data)
    rows = (tmp_path / "sweep.csv").read_text().splitlines()
    assert rows[0].startswith("trial,configuration,label,seed,status")
    assert len(rows) == 5 and ",diverged," in rows[4]


def test_tune_outcomes_become_statuses(tmp_path):
    write_base(tmp_path)
    plan = load_plan(write_sweep(tmp_path, "base: tiny.yaml\nseeds: 4\n"))
    data = results.new_sweep_json(plan, str(tmp_path), "ray")
    run = tmp_path / "trials" / "c0-s3"
    run.mkdir(parents=True)
    finished = {"seed": 3, "steps": 40, "seconds": 1.5, "converged": None,
                "heldout": {"bits_wrong": 2.5}, "diverged": None}
    (run / "seeds.json").write_text(json.dumps([finished]))
    r = results.records(data)
    results.apply_outcome(tmp_path, r[0], results.Outcome("c0-s3", "TERMINATED",
                                                          {"final": True, "step": 40}))
    results.apply_outcome(tmp_path, r[1], results.Outcome(
        "c0-s4", "TERMINATED", {"final": False, "step": 20, "seconds": 0.7,
                                "heldout_metrics": {"bits_wrong": 4.0}}))
    results.apply_outcome(tmp_path, r[2], results.Outcome("c0-s5", "ERROR", {}, "OSError: x", 4))
    results.apply_outcome(tmp_path, r[3], results.Outcome("c0-s6", "RUNNING", {"step": 20}))
    assert [t.status for t in r] == ["not_converged", "stopped", "error", "pending"]
    assert (r[0].steps, r[0].heldout, r[0].run) == (40, {"bits_wrong": 2.5}, "trials/c0-s3")
    assert (r[1].steps, r[1].heldout) == (20, {"bits_wrong": 4.0})
    assert (r[2].error, r[2].failures) == ("OSError: x", 4)
    # a trial Tune calls finished must have its run directory
    (run / "seeds.json").unlink()
    with pytest.raises(SweepError, match="c0-s3 finished but its run directory has no seeds"):
        results.apply_outcome(tmp_path, results.records(data)[0], results.Outcome(
            "c0-s3", "TERMINATED", {"final": True}))


def test_asha_stops_the_worse_trials_at_a_rung_and_is_off_by_default(tmp_path):
    write_base(tmp_path)
    assert make_scheduler(load_plan(write_sweep(tmp_path, "base: tiny.yaml\n"))) is None
    plan = load_plan(write_sweep(tmp_path, "base: tiny.yaml\n"
                                 "asha: {grace_period: 10, reduction_factor: 2}\n"))
    scheduler = make_scheduler(plan)

    class Trial:  # what the scheduler reads of a trial
        def __init__(self, k):
            self.trial_id = str(k)

    trials = [Trial(k) for k in range(4)]
    for t in trials:
        scheduler.on_trial_add(None, t)
    decisions = [scheduler.on_trial_result(None, t, {"step": 10, "objective": v})
                 for t, v in zip(trials, [1.0, 2.0, 0.5, 3.0])]
    assert decisions == ["CONTINUE", "STOP", "CONTINUE", "STOP"]
    assert scheduler.on_trial_result(None, trials[0], {"step": 5, "objective": 9.0}) == \
        "CONTINUE"  # before the grace period
    # a trial that reaches its budget (40 steps) is not stopped there: it finishes
    best = Trial(9)
    scheduler.on_trial_add(None, best)
    assert [scheduler.on_trial_result(None, best, {"step": step, "objective": 0.1})
            for step in (10, 20, 40)] == ["CONTINUE"] * 3


# ---------------------------------------------------------------- on Ray
def sweep_command(*args, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "mannlab", "sweep", *map(str, args)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            **kwargs)


def finish(proc: subprocess.Popen, timeout: float = 150) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    """The tiny config's programs in the session's compilation cache (which
    trial processes share): trials load them instead of compiling."""
    run = api.train(tiny_config(log_images=False, max_steps=20),
                    run_dir=tmp_path_factory.mktemp("warm") / "run")
    api.evaluate(run.path, lengths=[2, 5], sequences=16)


CLUSTER_ENV = {**os.environ, "RAY_AUTH_MODE": "disabled"}  # a test cluster of its own
CLUSTER = """
import time, ray
ray.init(address="local", num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1")
print(ray.get_runtime_context().gcs_address.rsplit(":", 1)[1], flush=True)
time.sleep(600)
"""


@pytest.fixture(scope="module")
def ray_cluster():
    """A running Ray cluster of two nodes on the loopback address (a head
    with 2 CPUs, a second node with 1, as `ray start --address` joins one):
    the head's address."""
    head = subprocess.Popen([sys.executable, "-c", CLUSTER], stdout=subprocess.PIPE,
                            text=True, env=CLUSTER_ENV)
    node, port = None, None
    try:
        port = head.stdout.readline().strip()
        assert port.isdigit(), "the test's Ray cluster did not start"
        node = subprocess.Popen(
            [str(Path(sys.executable).parent / "ray"), "start", "--block", "--address",
             f"127.0.0.1:{port}", "--num-cpus", "1", "--node-ip-address", "127.0.0.1",
             "--disable-usage-stats"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=CLUSTER_ENV)
        said = []
        while not any("block forever" in line for line in said):
            said.append(node.stdout.readline())
            assert said[-1], "the second Ray node did not start: " + "".join(said)
        yield f"127.0.0.1:{port}"
    finally:
        for proc in (node, head):  # each stops its Ray processes on SIGTERM
            if proc is not None:
                proc.terminate()
                proc.wait(timeout=60)
        current = Path("/tmp/ray/ray_current_cluster")  # what `ray start` leaves behind
        if current.exists() and current.read_text().strip().endswith(f":{port}"):
            current.unlink()


@pytest.fixture(scope="module")
def finished_sweep(tmp_path_factory, compiled, ray_cluster):
    """2 configurations (one converges at its first evaluation, one trains
    to its budget) x 2 seeds, evaluated at lengths 2 and 5, on a running
    two-node Ray cluster (`--address`) with Tune's checkpoints in `--storage`."""
    tmp = tmp_path_factory.mktemp("sweep")
    write_base(tmp, max_steps=60)
    path = write_sweep(tmp, """
base: tiny.yaml
grid:
  train.converge_at: [10.0, null]
seeds: 2
lengths: [2, 5]
sequences: 16
""")
    started = time.perf_counter()
    code, out, err = finish(sweep_command(path, "--dir", tmp / "out", "--address", ray_cluster,
                                          "--storage", tmp / "storage", env=CLUSTER_ENV))
    assert code == 0, out + err
    return tmp / "out", out, time.perf_counter() - started


@pytest.mark.slow
def test_a_sweep_table_matches_the_trials_own_results(finished_sweep):
    out_dir, stdout, _ = finished_sweep
    data = json.loads((out_dir / "sweep.json").read_text())
    assert [t["id"] for t in data["trials"]] == ["c0-s3", "c0-s4", "c1-s3", "c1-s4"]
    own = {}
    for t in data["trials"]:
        run = out_dir / "trials" / t["id"]
        (result,) = json.loads((run / "seeds.json").read_text())
        evaluated = json.loads((run / f"seed-{t['seed']}" / "eval.json").read_text())
        own[t["id"]] = (result, evaluated["seeds"][f"seed-{t['seed']}"])
        assert result["seed"] == t["seed"] and t["run"] == f"trials/{t['id']}"
        assert (t["steps"], t["heldout"], t["converged"]) == (
            result["steps"], result["heldout"], result["converged"])
    for s in data["summary"]:
        mine = [own[t["id"]] for t in data["trials"] if t["configuration"] == s["id"]]
        converged = [r for r, _ in mine if r["converged"]]
        assert s["converged"] == len(converged)
        steps = [r["converged"]["step"] for r in converged]
        if steps:
            assert s["steps_to_converge"]["median"] == float(np.median(steps))
        assert s["heldout"] == pytest.approx(np.median([r["heldout"]["bits_wrong"]
                                                        for r, _ in mine]))
        for length in ("2", "5"):
            assert s["eval"][length] == pytest.approx(np.median([e[length]["bits_wrong"]
                                                                 for _, e in mine]))
        assert f"{s['converged']}/2" in stdout
    # converge_at 10 bits: both seeds converge at the first evaluation; null: none do
    by_id = {s["id"]: s for s in data["summary"]}
    assert by_id["c0"]["converged"] == 2 and by_id["c0"]["steps_to_converge"]["median"] == 20
    assert by_id["c1"]["converged"] == 0 and by_id["c1"]["not_converged"] == 2
    # the trials' checkpoints went to --storage, the sweep directory has their copies
    assert not (out_dir / "ray").exists()
    (experiment,) = (out_dir.parent / "storage").iterdir()
    assert sorted(p.name for p in experiment.glob("c*-s*")) == sorted(own)
    nodes = {r["node"] for p in experiment.glob("c*-s*") for r in reports(p / "result.json")}
    assert len(nodes) == 2  # the trials ran on both nodes
    csv_rows = (out_dir / "sweep.csv").read_text().splitlines()
    assert len(csv_rows) == 5 and csv_rows[1].startswith("c0-s3,c0,train.converge_at=10,3,converged,20,")


@pytest.mark.slow
def test_a_trial_is_an_ordinary_run_directory(finished_sweep, tmp_path):
    out_dir, _, _ = finished_sweep
    table = api.evaluate(out_dir / "trials" / "c1-s4", lengths=[3], sequences=4)
    assert set(table["seeds"]) == {"seed-4"}
    assert not list((out_dir / "trials").glob("*/seed-*/.lock"))


@pytest.mark.slow
def test_report_of_a_sweep(finished_sweep, tmp_path):
    out_dir, _, _ = finished_sweep
    page = tmp_path / "sweep.html"
    assert main(["report", str(out_dir), "-o", str(page)]) == 0
    text = page.read_text()
    for fig in ("fig-success", "fig-time", "fig-curves"):
        assert f'id="{fig}" data-figure="{fig}"><img' in text and "data:image/png;base64," in text
    summary = text[text.index('<table id="table-summary">'):text.index("</table>")]
    assert summary.count("<tr>") == 3  # header and two configurations
    assert "<td>2/2</td>" in summary and "<td>0/2</td>" in summary
    assert "20 [20, 20]" in summary  # steps to converge of c0
    for trial in ("c0-s3", "c0-s4", "c1-s3", "c1-s4"):
        assert f'<td class="label">{trial}</td>' in text


@pytest.mark.slow
def test_running_a_finished_sweep_again_runs_nothing(finished_sweep, tmp_path):
    out_dir, _, _ = finished_sweep
    before = {p: p.stat().st_mtime_ns for p in (out_dir / "trials").rglob("*")}
    again = run_sweep(out_dir.parent / "sweep.yaml", out_dir, log=lambda *a: None)
    assert again.ran == 0 and not again.pending
    assert {p: p.stat().st_mtime_ns for p in (out_dir / "trials").rglob("*")} == before


def wait_for(what, timeout: float, proc: subprocess.Popen):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = what()
        if found:
            return found
        if proc.poll() is not None:
            pytest.fail(f"the sweep ended ({proc.returncode}) while waiting: "
                        + "".join(proc.communicate()))
        time.sleep(0.2)
    proc.kill()
    pytest.fail("timed out: " + "".join(proc.communicate()))


def reports(result_json: Path) -> list[dict]:
    """What Tune recorded of a trial's reports (each a checkpoint here)."""
    if not result_json.exists():
        return []
    return [json.loads(line) for line in result_json.read_text().splitlines()
            if line.strip().endswith("}")]


@pytest.mark.slow
def test_killed_worker_and_interrupted_sweep_resume_exactly(tmp_path, compiled):
    """c0 diverges at once; c1 trains long. c1's worker is killed (kill -9)
    after its first checkpoint and retried; once c0 is recorded and c1's
    retry has saved again, the sweep itself is interrupted (SIGINT). Run
    again, it trains only c1, from its checkpoint, and c1 ends exactly as an
    uninterrupted run of its config: the same steps, held-out figures and
    parameters. c0 is recorded as diverged with its step, never retried."""
    write_base(tmp_path, max_steps=60, eval_every=100, checkpoint_every=100)
    path = write_sweep(tmp_path, """
base: tiny.yaml
set: {train.eval_every: 100, train.checkpoint_every: 100, train.log_every: 100}
variants:
  - {train.max_steps: 100, train.learning_rate: 1.0e+37}
  - {train.max_steps: 3000}
seeds: [5]
""")
    out = tmp_path / "out"
    proc = sweep_command(path, "--dir", out)
    c1 = out / "ray" / "c1-s5" / "result.json"
    first = wait_for(lambda: reports(c1), 120, proc)[0]
    os.kill(first["pid"], signal.SIGKILL)
    wait_for(lambda: (out / "trials" / "c0-s5" / "seeds.json").exists(), 120, proc)
    wait_for(lambda: [r for r in reports(c1) if r["pid"] != first["pid"]], 120, proc)
    proc.send_signal(signal.SIGINT)
    code, stdout, stderr = finish(proc)
    assert code == 130, stdout + stderr
    assert "run the same command again" in stderr
    data = json.loads((out / "sweep.json").read_text())
    assert {t["id"]: t["status"] for t in data["trials"]} == {"c0-s5": "diverged",
                                                               "c1-s5": "pending"}
    diverged = data["trials"][0]
    (c0_result,) = json.loads((out / "trials" / "c0-s5" / "seeds.json").read_text())
    assert diverged["diverged"] == c0_result["diverged"] and 1 <= diverged["diverged"]["step"] <= 20
    assert diverged["failures"] == 0
    assert data["summary"][0]["diverged"] == 1
    c0_files = {p: p.stat().st_mtime_ns for p in (out / "trials" / "c0-s5").rglob("*")}

    code, stdout, stderr = finish(sweep_command(path, "--dir", out))
    assert code == 0, stdout + stderr
    assert "1 of 2 trials to run" in stdout
    assert {p: p.stat().st_mtime_ns for p in (out / "trials" / "c0-s5").rglob("*")} == c0_files
    data = json.loads((out / "sweep.json").read_text())
    trial = data["trials"][1]
    assert trial["status"] == "not_converged" and trial["failures"] >= 1
    assert data["trials"][0]["status"] == "diverged"
    assert len({r["pid"] for r in reports(c1)}) >= 3  # first, retried, resumed processes

    config = load_plan(path).trials[1].config
    reference = api.train(config, run_dir=tmp_path / "reference")
    (expected,) = reference.seeds
    (got,) = json.loads((out / "trials" / "c1-s5" / "seeds.json").read_text())
    assert (got["steps"], got["heldout"], got["converged"]) == (
        expected["steps"], expected["heldout"], expected["converged"])
    mine = load_file(out / "trials" / "c1-s5" / "seed-5" / "checkpoint.safetensors")
    theirs = load_file(tmp_path / "reference" / "seed-5" / "checkpoint.safetensors")
    assert mine.keys() == theirs.keys()
    for name in mine:
        np.testing.assert_array_equal(mine[name], theirs[name], err_msg=name)

    def heldout(run):
        return [(r["step"], r["bits_wrong"]) for r in map(json.loads, (
            run / "seed-5" / "metrics.jsonl").read_text().splitlines())
            if r["split"] == "heldout"]

    assert heldout(out / "trials" / "c1-s5") == heldout(tmp_path / "reference")
    assert len(heldout(tmp_path / "reference")) == 30
