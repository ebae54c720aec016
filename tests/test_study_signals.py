"""Issue 15: signals and kills. A study stops within seconds on SIGINT / SIGTERM with any number of
workers, leaves no process behind, and a study killed (SIGKILL) again and again at random moments --
in a cell's metrics stage, during the pool write, to the whole group or to the runner alone -- ends
with the same pool, row for row, as an uninterrupted run.

Every process of a run carries a unique environment token, so "no process left" is checked by
looking for that token in ``/proc/*/environ`` (workers reparented to init included).
"""
from __future__ import annotations

import itertools
import json
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pandas as pd
import pytest

from sparsetopo.study import StudyStore, load_config, run_study

TESTS = Path(__file__).parent
sys.path.insert(0, str(TESTS))
from _torture import torture_cell  # noqa: E402
from test_study_runner import count_results, count_steps, write_config  # noqa: E402

pytestmark = pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="needs Linux /proc")


def processes_with(token: str) -> list[int]:
    """PIDs of live processes whose environment holds ``token`` (zombies excluded)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if token.encode() in (entry / "environ").read_bytes():
                state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
                if state != "Z":
                    found.append(int(entry.name))
        except OSError:
            continue
    return found


def wait_until(predicate, timeout: float, step: float = 0.005) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return predicate()


def environment(token: str, **env) -> dict[str, str]:
    return {**os.environ, "RUN_TOKEN": token,
            "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]),
            **{k: str(v) for k, v in env.items()}}


@pytest.mark.slow
@pytest.mark.parametrize("how", ["SIGINT to the group", "SIGTERM to the runner alone"])
def test_signal_stops_a_two_worker_run_within_seconds(tmp_path, how):
    config_path = write_config(tmp_path, jobs=2)
    out = tmp_path / "s"
    token = uuid.uuid4().hex
    runner = subprocess.Popen([sys.executable, "-m", "sparsetopo.cli", "study", "run", str(config_path), "--out",
                               str(out), "--no-progress", "--allow-custom-cell"],
                              env=environment(token, FAKE_STEP_DELAY=1.0), start_new_session=True,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert wait_until(lambda: count_steps(out) >= 2 and len(processes_with(token)) >= 3, 120, 0.05), \
        "the run never had two workers busy"
    sent = time.monotonic()
    if how.startswith("SIGINT"):
        os.killpg(runner.pid, signal.SIGINT)
    else:
        os.kill(runner.pid, signal.SIGTERM)
    code = runner.wait(timeout=30)
    elapsed = time.monotonic() - sent
    log = runner.stdout.read().decode()
    assert elapsed < 10, f"took {elapsed:.1f} s to stop"
    assert code == (130 if how.startswith("SIGINT") else 143), log
    assert "Traceback" not in log and "interrupted (SIG" in log
    assert wait_until(lambda: not processes_with(token), 2.0), "a process of the run survived"
    store = StudyStore(out)
    cells = load_config(config_path, allow_custom_cell=True).cells()
    assert not any(store.is_claimed(c) for c in cells)  # claims released
    finished = sum(1 for c in cells if not c.is_dense and store.read_result(c) is not None)
    assert len(pd.read_parquet(out / "pool.parquet")) == finished  # the pool holds what finished


def _count_in_logs(out: Path, text: str) -> int:
    total = 0
    for log in out.glob("cells/*/cell.log"):
        try:
            total += log.read_text().count(text)
        except OSError:
            pass
    return total


def _pool_write_started(out: Path) -> bool:
    return any(out.glob(".pool*.tmp"))


@pytest.mark.slow
def test_kill_resume_torture_pool_equals_uninterrupted_run(tmp_path):
    config_path = write_config(tmp_path)
    config_path.write_text(config_path.read_text().replace('cell_function = "test_study_runner:fake_cell"\n', ""))
    reference = tmp_path / "reference"
    env = dict(FAKE_STEP_DELAY=0.15, TORTURE_METRICS_DELAY=0.4, TORTURE_POOL_DELAY=0.4)
    assert run_study(load_config(config_path), reference, cell_fn=torture_cell, progress=False).complete
    want = [pd.read_parquet(reference / name) for name in ("pool.parquet", "pool_layers.parquet")]
    rng = random.Random(15)
    aims = itertools.cycle(["metrics", "pool", "random", "metrics", "random"])
    kills: dict[str, int] = {}
    for jobs in (1, 2):
        out = tmp_path / f"jobs{jobs}"
        done_kills = 0
        while done_kills < 10:
            token = uuid.uuid4().hex
            aim = next(aims)
            metrics_before = _count_in_logs(out, "start metrics")
            runner = subprocess.Popen([sys.executable, "-c", "from _torture import main; main()", str(config_path),
                                       str(out), str(jobs)], env=environment(token, **env), start_new_session=True,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            if aim == "metrics":
                hit = wait_until(lambda: _count_in_logs(out, "start metrics") > metrics_before or runner.poll() is not None, 60)
            elif aim == "pool":
                hit = wait_until(lambda: _pool_write_started(out) or runner.poll() is not None, 60)
            else:
                hit = wait_until(lambda: runner.poll() is not None, rng.uniform(0.2, 2.5)) is False
            if runner.poll() is None and hit:
                whole_group = rng.random() < 0.7  # else the runner alone: its workers must die with it
                (os.killpg if whole_group else os.kill)(runner.pid, signal.SIGKILL)
                done_kills += 1
                kills[f"{aim} (jobs={jobs})"] = kills.get(f"{aim} (jobs={jobs})", 0) + 1
            runner.wait(timeout=60)
            assert wait_until(lambda: not processes_with(token), 5.0), f"orphan after a kill aimed at {aim}"
            for name in ("pool.parquet", "pool_layers.parquet"):  # a pool that exists is never torn
                if (out / name).exists():
                    pd.read_parquet(out / name)
        finish = subprocess.run([sys.executable, "-c", "from _torture import main; main()", str(config_path),
                                 str(out), str(jobs)], env=environment(uuid.uuid4().hex, FAKE_STEP_DELAY=0),
                                timeout=120)
        assert finish.returncode == 0
        got = [pd.read_parquet(out / name) for name in ("pool.parquet", "pool_layers.parquet")]
        for table, expected in zip(got, want):
            pd.testing.assert_frame_equal(table, expected)  # row for row, value for value
        cells = len(load_config(config_path).cells())
        assert count_results(out) == cells
        steps = [json.loads(p.read_text())["steps"] for p in out.glob("cells/*/steps.json")]
        assert all(len(s) == 3 for s in steps)  # checkpointed steps resumed, none redone
    assert sum(kills.values()) >= 20
    for aim in ("metrics", "pool"):
        assert any(k.startswith(aim) for k in kills), f"no kill landed during {aim}: {kills}"
