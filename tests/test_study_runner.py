"""Study mechanics with a cheap, deterministic fake cell: pool, resume, failures, kill -9, two runners.

``fake_cell`` stands in for the real pipeline (it is selected by ``run.cell_function`` or the
``cell_fn`` argument): it works in 3 checkpointed steps (``steps.json``), leaves one ``attempt-*``
file per invocation, and returns rows whose values are a function of the cell spec only, so two
runs of the same grid must give identical pool tables. Environment knobs: FAKE_STEP_DELAY (s per
step), FAKE_START_DELAY (s before any work), FAKE_FAIL_PRUNER (raise for that pruner).
"""
import json
import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pandas as pd
import pytest

from sparsetopo._io import atomic_write_json
from sparsetopo.analysis.pool import ROLLED_FEATURES, TOPOMETRICS, validate_pool
from sparsetopo.cli import main
from sparsetopo.study import StudyStore, config_from_dict, run_study

TESTS = Path(__file__).parent
STEPS = 3


def fake_cell(spec, cell_dir, *, log, **_):
    """Deterministic stand-in for :func:`sparsetopo.study.run_cell` (see the module docstring)."""
    time.sleep(float(os.environ.get("FAKE_START_DELAY", "0")))
    (cell_dir / f"attempt-{os.getpid()}-{time.time_ns()}").touch()
    steps_path = cell_dir / "steps.json"
    done = json.loads(steps_path.read_text())["steps"] if steps_path.exists() else []
    with log.stage("work"):
        for step in range(len(done), STEPS):
            time.sleep(float(os.environ.get("FAKE_STEP_DELAY", "0")))
            done.append(os.getpid())
            atomic_write_json(steps_path, {"steps": done})
        if spec.pruner == "er":
            warnings.warn("layer conv9 pruned entirely", RuntimeWarning)
    if spec.pruner is not None and spec.pruner == os.environ.get("FAKE_EXIT_PRUNER"):
        os._exit(3)  # the worker process dies (think: out of memory)
    if spec.pruner is not None and spec.pruner == os.environ.get("FAKE_FAIL_PRUNER"):
        raise RuntimeError(f"pruner {spec.pruner} exploded")
    value = int(spec.digest[:6], 16) / 16 ** 6
    accuracy = 0.5 + 0.5 * value if spec.is_dense else 0.2 + 0.3 * value
    rows = [{"encoding": "mge", **{m: value + i for i, m in enumerate(TOPOMETRICS)}, "nodes": 100, "edges": 300}]
    layer_rows = [{"encoding": enc, "layer": layer, "layer_name": f"conv{layer}",
                   **{m: value * layer + i for i, m in enumerate(ROLLED_FEATURES)}, "nodes": 10, "edges": 20,
                   "delta_r": value, "delta_r_imdb": float("nan"), "lambda_imsg": 1.0, "layer_density": 0.1}
                  for enc in ("rolled", "rolled_channel") for layer in range(2)]
    return {"accuracy": accuracy, "epochs": 1, "rows": rows, "layer_rows": layer_rows}


GRID = {"grid": {"models": ["resnet20", "conv6"], "datasets": ["digits"], "sparsities": [0.5, 0.9],
                 "pruners": ["snip", "er"], "seeds": [0, 1]},
        "recipe": {"epochs": 1}}
N_SPARSE, N_DENSE = 2 * 2 * 2 * 2, 2 * 2


def attempts(study_dir):
    return sorted(p.parent.name for p in Path(study_dir).glob("cells/*/attempt-*"))


def tables(study_dir):
    return pd.read_parquet(Path(study_dir) / "pool.parquet"), pd.read_parquet(Path(study_dir) / "pool_layers.parquet")


def test_study_builds_pool_and_rerun_is_a_noop(tmp_path):
    config = config_from_dict(GRID)
    report = run_study(config, tmp_path / "s", cell_fn=fake_cell, progress=False)
    assert report.complete and report.count("done") == N_SPARSE + N_DENSE
    pool, layers = tables(tmp_path / "s")
    assert len(pool) == N_SPARSE and len(layers) == N_SPARSE * 2 * 2
    validate_pool(pool), validate_pool(layers, layers=True)  # the analysis accepts both tables
    store = StudyStore(tmp_path / "s")
    for (model, dataset), group in pool.groupby(["model", "dataset"]):
        dense = [store.read_result(c)["accuracy"] for c in config.cells()
                 if c.is_dense and c.model == model and c.dataset == dataset]
        assert len(dense) == 2 and group["dense_accuracy"].tolist() == pytest.approx([sum(dense) / 2] * len(group))
    csv = pd.read_csv(tmp_path / "s" / "pool.csv")
    assert csv[["model", "pruner", "sparsity", "seed"]].equals(pool[["model", "pruner", "sparsity", "seed"]])
    log = next((tmp_path / "s" / "cells").glob("*snip*/cell.log")).read_text()
    assert "done work in" in log and "cell done" in log
    er_cell = next(c for c in config.cells() if c.pruner == "er")
    assert store.read_result(er_cell)["warnings"] == ["work: RuntimeWarning: layer conv9 pruned entirely"]
    assert "warning work: RuntimeWarning" in (store.cell_dir(er_cell) / "cell.log").read_text()
    for name in ("pool.parquet", "pool_layers.parquet", "pool.csv"):
        (tmp_path / "s" / name).unlink()
    assert main(["study", "pool", str(tmp_path / "s")]) == 0  # rebuilt from the cell results alone
    pd.testing.assert_frame_equal(tables(tmp_path / "s")[0], pool)
    before = attempts(tmp_path / "s")
    again = run_study(config, tmp_path / "s", cell_fn=fake_cell, progress=False)
    assert again.already_done == again.total and again.outcomes == []
    assert attempts(tmp_path / "s") == before  # nothing ran twice
    pd.testing.assert_frame_equal(tables(tmp_path / "s")[0], pool)


def test_failures_are_isolated_recorded_and_retried(tmp_path, monkeypatch, capsys):
    config = config_from_dict(GRID)
    monkeypatch.setenv("FAKE_FAIL_PRUNER", "er")
    report = run_study(config, tmp_path / "s", cell_fn=fake_cell, progress=False)
    assert report.count("failed") == N_SPARSE // 2 and report.count("done") == N_SPARSE // 2 + N_DENSE
    assert not report.complete
    store = StudyStore(tmp_path / "s")
    failed = [c for c in config.cells() if c.pruner == "er"]
    error = json.loads(store.error_path(failed[0]).read_text())
    assert error["type"] == "RuntimeError" and "exploded" in error["message"]
    assert "fake_cell" in error["traceback"]
    assert len(tables(tmp_path / "s")[0]) == N_SPARSE // 2  # the pool holds the finished cells
    assert main(["study", "status", str(tmp_path / "s")]) == 1
    out = capsys.readouterr().out
    assert f"{N_SPARSE // 2} failed" in out and "RuntimeError: pruner er exploded" in out
    assert out.count("failed   ") == N_SPARSE // 2
    monkeypatch.delenv("FAKE_FAIL_PRUNER")
    retry = run_study(config, tmp_path / "s", cell_fn=fake_cell, progress=False)
    assert retry.complete and retry.count("done") == N_SPARSE // 2  # only the failed ones ran
    assert not store.error_path(failed[0]).exists()
    assert len(tables(tmp_path / "s")[0]) == N_SPARSE
    assert main(["study", "status", str(tmp_path / "s")]) == 0


def test_status_reports_pending_reasons(tmp_path, capsys):
    config = config_from_dict(GRID)
    store = StudyStore(tmp_path / "s")
    store.save_config(config)
    cells = config.cells()
    (store.cell_dir(cells[1]) / "train").mkdir(parents=True)
    (store.cell_dir(cells[1]) / "train" / "checkpoint.pt").write_bytes(b"x")
    store.cell_dir(cells[2]).mkdir(parents=True)
    (store.cell_dir(cells[2]) / "masks.safetensors").write_bytes(b"x")
    states = store.statuses(cells)
    assert [s.state for s in states] == ["pending"] * len(cells)
    assert "training" in states[1].reason and "pruning" in states[2].reason and states[0].reason == "not started"
    assert main(["study", "status", str(tmp_path / "s")]) == 1
    assert f"{len(cells)} pending" in capsys.readouterr().out


def test_claimed_cell_is_left_to_its_owner(tmp_path):
    config = config_from_dict(GRID)
    store = StudyStore(tmp_path / "s")
    held = config.cells()[3]
    with store.claim(held) as mine:
        assert mine
        report = run_study(config, tmp_path / "s", cell_fn=fake_cell, progress=False)
        assert store.status(held).state == "running"
    assert [o.cell_id for o in report.outcomes if o.state == "busy"] == [held.cell_id]
    assert not report.complete and store.status(held).state == "pending"


# --- subprocess runners ---------------------------------------------------------------------------

def write_config(tmp_path, jobs=1):
    lines = ["[grid]", 'models = ["resnet20"]', 'datasets = ["digits"]', "sparsities = [0.5, 0.9]",
             'pruners = ["snip", "er"]', "seeds = [0]", "[recipe]", "epochs = 1",
             "[run]", f"jobs = {jobs}", 'cell_function = "test_study_runner:fake_cell"']
    path = tmp_path / "study.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def start_runner(config_path, out, **env):
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]),
                   **{k: str(v) for k, v in env.items()}}
    return subprocess.Popen([sys.executable, "-m", "sparsetopo.cli", "study", "run", str(config_path),
                             "--out", str(out), "--no-progress", "--allow-custom-cell"], env=environment,
                            start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def wait_for(predicate, process, timeout=60.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert process.poll() is None, process.stdout.read().decode()
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def count_steps(out):
    return sum(len(json.loads(p.read_text())["steps"]) for p in Path(out).glob("cells/*/steps.json"))


def count_results(out):
    return len(list(Path(out).glob("cells/*/result.json")))


@pytest.mark.slow
def test_kill_mid_cell_and_between_cells_then_resume(tmp_path):
    config_path = write_config(tmp_path)
    reference = tmp_path / "reference"
    assert run_study(small_grid(), reference, cell_fn=fake_cell, progress=False).complete  # same grid as the file
    out = tmp_path / "killed"
    env = dict(FAKE_STEP_DELAY=0.3, FAKE_START_DELAY=0.8)
    # 1) kill -9 in the middle of the second cell (some of its steps done, its result not written)
    runner = start_runner(config_path, out, **env)
    wait_for(lambda: count_results(out) == 1 and count_steps(out) > STEPS, runner)
    os.killpg(runner.pid, signal.SIGKILL)
    runner.wait()
    assert count_results(out) == 1 and STEPS < count_steps(out) < 2 * STEPS
    # 2) resume, kill -9 between cells: a result just landed, the next cell has done no work yet
    runner = start_runner(config_path, out, **env)
    wait_for(lambda: count_results(out) == 3, runner)
    steps_at_kill = count_steps(out)
    os.killpg(runner.pid, signal.SIGKILL)
    runner.wait()
    assert steps_at_kill == 3 * STEPS and count_steps(out) == 3 * STEPS  # nothing half done
    # 3) resume to the end
    runner = start_runner(config_path, out, **env)
    assert runner.wait(timeout=120) == 0, runner.stdout.read().decode()
    total = 1 + 2 * 2
    assert count_results(out) == total
    assert count_steps(out) == total * STEPS  # the interrupted cell resumed its steps, none redone
    for got, want in zip(tables(out), tables(reference)):
        assert not got.duplicated(["model", "dataset", "pruner", "sparsity", "seed", "encoding"]
                                  + (["layer"] if "layer" in got else [])).any()
        pd.testing.assert_frame_equal(got.drop(columns=["cell_id"]), want.drop(columns=["cell_id"]))


@pytest.mark.slow
def test_two_runners_on_one_directory(tmp_path):
    config_path = write_config(tmp_path)
    out = tmp_path / "shared"
    # 15 s of work for one runner: the second one starts (imports torch) well before it is all done,
    # even on a loaded machine
    env = dict(FAKE_STEP_DELAY=1.0)
    runners = [start_runner(config_path, out, **env) for _ in range(2)]
    codes = [r.wait(timeout=180) for r in runners]
    logs = [r.stdout.read().decode() for r in runners]
    assert all(code in (0, 1) for code in codes), logs
    total = 1 + 2 * 2
    cells = sorted(p.name for p in (out / "cells").iterdir())
    assert len(cells) == total and count_results(out) == total
    assert sorted(set(attempts(out))) == cells and len(attempts(out)) == total, "a cell ran twice"
    pids = {tuple(json.loads(p.read_text())["steps"]) for p in out.glob("cells/*/steps.json")}
    assert all(len(set(steps)) == 1 for steps in pids)  # each cell worked by a single process
    assert len({steps[0] for steps in pids}) == 2  # both runners did work (they really overlapped)
    pool, layers = tables(out)
    assert len(pool) == 4 and len(layers) == 4 * 4
    validate_pool(pool), validate_pool(layers, layers=True)
    assert main(["study", "status", str(out)]) == 0
    assert not list(out.rglob("*.tmp"))  # no torn temporary files left behind


def small_grid():
    return config_from_dict({**GRID, "grid": {**GRID["grid"], "models": ["resnet20"], "seeds": [0]}})


def test_local_process_pool_matches_in_process_run(tmp_path, monkeypatch):
    serial = run_study(small_grid(), tmp_path / "serial", cell_fn=fake_cell, progress=False)
    monkeypatch.setenv("FAKE_EXIT_PRUNER", "er")
    crashed = run_study(small_grid().replace(jobs=2), tmp_path / "pooled", cell_fn=fake_cell, progress=False)
    assert not crashed.complete and any("worker died" in (o.error or "") for o in crashed.outcomes)
    monkeypatch.delenv("FAKE_EXIT_PRUNER")
    pooled = run_study(small_grid().replace(jobs=2), tmp_path / "pooled", cell_fn=fake_cell, progress=False)
    assert serial.complete and pooled.complete
    assert pooled.already_done + pooled.count("done") == 5 and pooled.count("done") >= 2  # the er cells rerun
    worker_pids = {p.name.split("-")[1] for p in (tmp_path / "pooled").glob("cells/*/attempt-*")}
    assert str(os.getpid()) not in worker_pids  # the cells ran in spawned workers
    for got, want in zip(tables(tmp_path / "pooled"), tables(tmp_path / "serial")):
        pd.testing.assert_frame_equal(got, want)


@pytest.mark.ray
@pytest.mark.slow
def test_ray_executor_end_to_end(tmp_path, monkeypatch):
    ray = pytest.importorskip("ray")
    monkeypatch.setenv("FAKE_FAIL_PRUNER", "er")
    context = ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]),
                                       "FAKE_FAIL_PRUNER": "er"}})
    try:
        config = small_grid().replace(executor="ray")
        report = run_study(config, tmp_path / "ray", cell_fn=fake_cell, progress=False)
        assert report.count("done") == 3 and report.count("failed") == 2  # failures isolated on Ray too
        worker_pids = {p.name.split("-")[1] for p in (tmp_path / "ray").glob("cells/*/attempt-*")}
        assert str(os.getpid()) not in worker_pids  # the cells ran in Ray workers
        # the real pipeline, through the CLI, from a second driver connecting by address
        (tmp_path / "real.toml").write_text(
            '[grid]\nmodels = ["resnet20"]\ndatasets = ["digits"]\nsparsities = [0.98]\npruners = ["erk"]\n'
            "[recipe]\nepochs = 1\n[data]\ntrain_subset = 32\ntest_subset = 16\n")
        command = [sys.executable, "-m", "sparsetopo.cli", "study", "run", str(tmp_path / "real.toml"), "--out",
                   str(tmp_path / "ray-real"), "--executor", "ray", "--address", context.address_info["address"],
                   "--no-progress"]
        done = subprocess.run(command, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        assert "[ray, jobs=1]" in done.stderr and "2/2 cells done" in done.stderr
        pool, layers = tables(tmp_path / "ray-real")
        # one network, measured at initialization and after training (stage column)
        assert len(validate_pool(pool)) == 2 and set(pool["pruner"]) == {"erk"}
        assert sorted(pool["stage"]) == ["init", "trained"]
        assert len(validate_pool(layers, layers=True)) == 2 * 44
    finally:
        ray.shutdown()
    monkeypatch.delenv("FAKE_FAIL_PRUNER")
    local = run_study(small_grid(), tmp_path / "local", cell_fn=fake_cell, progress=False)
    assert local.complete
    ray_pool = tables(tmp_path / "ray")[0]
    local_pool = tables(tmp_path / "local")[0]
    snip = local_pool[local_pool["pruner"] == "snip"].reset_index(drop=True)
    pd.testing.assert_frame_equal(ray_pool, snip)


def pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.slow
def test_ctrl_c_stops_the_workers_and_keeps_finished_cells(tmp_path):
    config_path = write_config(tmp_path, jobs=2)
    out = tmp_path / "interrupted"
    runner = start_runner(config_path, out, FAKE_STEP_DELAY=1.0)
    wait_for(lambda: count_results(out) >= 1 and count_steps(out) >= STEPS + 1, runner, timeout=120)
    os.kill(runner.pid, signal.SIGINT)  # to the runner only, not to its workers' group
    assert runner.wait(timeout=60) == 130
    workers = {pid for p in out.glob("cells/*/steps.json") for pid in json.loads(p.read_text())["steps"]}
    time.sleep(0.5)
    assert workers and not any(pid_alive(pid) for pid in workers)  # no orphan keeps computing
    pool = pd.read_parquet(out / "pool.parquet")  # rebuilt on the way out
    # one row per finished sparse cell (the dense cell runs beside the first sparse one: either may end first)
    assert len(pool) == sum(1 for p in out.glob("cells/*/result.json") if "-dense-" not in p.parent.name)
    runner = start_runner(config_path, out, FAKE_STEP_DELAY=0.0)
    assert runner.wait(timeout=120) == 0
    assert count_results(out) == 5 and len(pd.read_parquet(out / "pool.parquet")) == 4


def test_cli_run_without_dense_baselines_warns(tmp_path, capsys):
    path = write_config(tmp_path)
    path.write_text(path.read_text().replace("seeds = [0]", "seeds = [0]\ndense = false"))
    assert main(["study", "run", str(path), "--out", str(tmp_path / "s"), "--no-progress", "--allow-custom-cell"]) == 0
    err = capsys.readouterr().err
    assert "4/4 cells done" in err and "4 pool row(s) have no dense_accuracy" in err
    assert pd.read_parquet(tmp_path / "s" / "pool.parquet")["dense_accuracy"].isna().all()
