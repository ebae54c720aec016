"""The real cell pipeline (prune -> train -> encode -> metrics) on a tiny study, killed and resumed.

One dense + one sparse ResNet-20 cell on 64 digits images, 2 epochs. The runner is killed with
SIGKILL while the sparse cell computes its MGE metrics (after pruning and training); the resumed run
must reuse the saved masks and the finished training checkpoint, not redo them, and produce a
pool the analysis accepts: the very rows pinned in ``data/study_pin_rows.json``, written by this
study on the code before the metric / encoding registries and the shared measurement pipeline
(issue 11), so the refactor provably left the pool rows unchanged. The spectral columns were
re-pinned for issue 16's Lanczos / SVD solvers (they moved by at most 1e-13 relative), and again for
its reorthogonalisation order and register-blocked CSR products (at most 5e-15 relative).
"""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from sparsetopo.analysis.pool import load_pools, select_stage
from sparsetopo.cli import main
from sparsetopo.study import StudyStore, load_config

STUDY = """
[grid]
models = ["resnet20"]
datasets = ["digits"]
sparsities = [0.98]
pruners = ["er"]
seeds = [0]

[recipe]
epochs = 2

[data]
train_subset = 64
test_subset = 32
"""


@pytest.mark.slow
def test_real_cells_killed_during_metrics_resume_without_redoing_work(tmp_path, capsys):
    config_path = tmp_path / "study.toml"
    config_path.write_text(STUDY)
    out = tmp_path / "study"
    runner = subprocess.Popen([sys.executable, "-m", "sparsetopo.cli", "study", "run", str(config_path),
                               "--out", str(out), "--no-progress"], start_new_session=True,
                              env={**os.environ, "OMP_NUM_THREADS": "1"},
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    dense, sparse = load_config(config_path).cells()
    store = StudyStore(out)
    log_path = store.cell_dir(sparse) / "cell.log"
    deadline = time.monotonic() + 240
    while not (log_path.is_file() and "start metrics mge" in log_path.read_text()):
        assert runner.poll() is None, runner.stdout.read().decode()
        assert time.monotonic() < deadline, "the sparse cell never reached its MGE metrics"
        time.sleep(0.05)
    os.killpg(runner.pid, signal.SIGKILL)
    runner.wait()
    masks, checkpoint = store.cell_dir(sparse) / "masks.safetensors", store.cell_dir(sparse) / "train" / "checkpoint.pt"
    stamps = (masks.stat().st_mtime_ns, checkpoint.stat().st_mtime_ns)
    assert store.status(dense).state == "done" and store.status(sparse).state == "pending"
    assert "training" in store.status(sparse).reason

    assert main(["study", "run", str(config_path), "--out", str(out), "--no-progress"]) == 0
    assert (masks.stat().st_mtime_ns, checkpoint.stat().st_mtime_ns) == stamps  # reused, not redone
    log = log_path.read_text()
    assert log.count("done prune") == 1 and log.count("done load masks") == 1 and log.count("epoch 2/2") == 1 and log.count("attempt ") == 2
    assert log.count("done metrics mge") == 1 and "cell done" in log
    result = store.read_result(sparse)
    trained = json.loads((store.cell_dir(sparse) / "train" / "result.json").read_text())
    assert result["accuracy"] == trained["accuracy"] and result["epochs"] == 2

    pool, layers = load_pools(out / "pool.parquet", out / "pool_layers.parquet")  # the analysis' own checks
    assert sorted(pool["stage"]) == ["init", "trained"]  # measured before training too (reused on resume)
    assert log.count("done init: metrics mge") == 1
    pool, layers = select_stage(pool, "trained"), select_stage(layers, "trained")
    assert len(pool) == 1 and pool.loc[0, "pruner"] == "er" and pool.loc[0, "sparsity"] == 0.98
    assert pool.loc[0, "dense_accuracy"] == store.read_result(dense)["accuracy"]
    assert pool.loc[0, "edges"] > 0 and pool.loc[0, "nodes"] > 0
    assert abs(pool.loc[0, "density"] - 0.02) < 1e-5  # nominal; ER at 98 % leaves dead weights
    assert 0 < pool.loc[0, "effective_density"] <= pool.loc[0, "density"]
    n_layers = 19 + 2 + 1  # ResNet-20 (shortcut B): convs, shortcut convs, classifier
    assert (layers.groupby("encoding").size() == n_layers).all() and set(layers["encoding"]) == {"rolled", "rolled_channel"}
    assert layers["layer_density"].between(0, 1).all() and {"delta_r", "lambda_imsg"} <= set(layers.columns)
    pd.testing.assert_frame_equal(pd.read_csv(out / "pool_layers.csv")[["layer", "layer_name"]],
                                  pd.read_parquet(out / "pool_layers.parquet")[["layer", "layer_name"]])
    assert_pinned_rows(out)
    capsys.readouterr()
    assert main(["study", "status", str(out), "--all"]) == 0
    assert "2 done" in capsys.readouterr().out


def assert_pinned_rows(study_dir):
    """Both pool files' trained-stage rows equal the pinned rows: same columns, dtypes and values
    (NaN == NaN). (The pin predates the ``stage`` column and the init-stage rows, issue 14.)"""
    pinned = json.loads((Path(__file__).parent / "data" / "study_pin_rows.json").read_text())
    for name, expected in pinned.items():
        table = pd.read_parquet(study_dir / f"{name}.parquet")
        table = table[table["stage"] == "trained"].drop(columns="stage").reset_index(drop=True)
        assert list(table.columns) == expected["columns"], name
        assert {c: str(t) for c, t in table.dtypes.items()} == expected["dtypes"], name
        want = pd.DataFrame(expected["rows"], columns=expected["columns"]).astype(table.dtypes.to_dict())
        pd.testing.assert_frame_equal(table, want, check_exact=True, obj=name)
