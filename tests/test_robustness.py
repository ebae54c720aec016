"""Issue 15: bad input and a hostile environment end in one named error, never a traceback or damage.

One test (or a few) per class: the scalar/seed rule shared by library, CLI and study files; writes
that fail (disk full simulated by a writer raising ENOSPC, and a real full tmpfs where the machine
lets us mount one); output paths checked before any work; corrupted cell results quarantined;
umask permissions; a closed stdout. Signals and kill/resume live in ``test_study_signals.py``.
"""
from __future__ import annotations

import errno
import json
import os
import stat
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from sparsetopo import _io
from sparsetopo.cli import main
from sparsetopo.errors import OutputError, StudyConfigError, ValidationError
from sparsetopo.masks import save_masks
from sparsetopo.study import StudyStore, config_from_dict, run_study
from sparsetopo.study.store import CorruptResultWarning
from sparsetopo.validation import SEED_BOUND, check_scalar, check_seed

sys.path.insert(0, str(Path(__file__).parent))
from test_study_runner import GRID, fake_cell, small_grid, tables  # noqa: E402

torch.set_num_threads(1)


# --- one scalar / seed rule ------------------------------------------------------------------------

@pytest.mark.parametrize("bad", [-1, SEED_BOUND, 2 ** 64, "3", True, np.bool_(True), 3.0, None, float("nan")])
def test_seed_rule_rejects(bad):
    with pytest.raises(ValidationError, match="seed"):
        check_seed(bad)


def test_seed_rule_accepts_and_scalar_bounds():
    assert check_seed(0) == 0 and check_seed(SEED_BOUND - 1) == SEED_BOUND - 1
    assert check_seed(np.int64(7)) == 7 and type(check_seed(np.int64(7))) is int
    assert check_scalar(2, "x", float, min_val=0) == 2.0
    with pytest.raises(ValidationError, match=r"x must be in \(0, 1\), got 1.0"):
        check_scalar(1.0, "x", float, min_val=0, max_val=1, include_boundaries="neither")
    with pytest.raises(StudyConfigError, match="must be true or false, got 1"):
        check_scalar(1, "flag", bool, error=StudyConfigError)


def test_seed_rule_is_the_same_in_library_study_and_cli(capsys):
    from sparsetopo.models import build
    from sparsetopo.pruning import prune

    for seed in (-1, 2 ** 64):
        with pytest.raises(ValidationError, match=r"seed must be in \[0, 9223372036854775808\)"):
            build("conv6", seed=seed)
        with pytest.raises(ValidationError, match=r"seed must be in \[0, "):
            prune(build("conv6", seed=0), "erk", 0.9, seed=seed)
        with pytest.raises(StudyConfigError, match=r"'grid.seeds'.*must be in \[0, "):
            config_from_dict({**GRID, "grid": {**GRID["grid"], "seeds": [seed]}})
        for command in (["prune", "--model", "conv6", "--pruner", "erk", "--sparsity", "0.9", "--num-classes", "10",
                         "--out", "m.safetensors"], ["train", "--model", "conv6", "--out", "runs/x"]):
            with pytest.raises(SystemExit) as exit_:
                main(command + ["--seed", str(seed)])
            assert exit_.value.code == 2
            err = capsys.readouterr().err
            assert "--seed must be in [0, 9223372036854775808)" in err and "Traceback" not in err
    with pytest.raises(StudyConfigError, match="'grid.sparsities'.*must be a number, got '0.9'"):
        config_from_dict({**GRID, "grid": {**GRID["grid"], "sparsities": ["0.9"]}})
    with pytest.raises(StudyConfigError, match="'grid.seeds'.*must be an integer, got True"):
        config_from_dict({**GRID, "grid": {**GRID["grid"], "seeds": [True]}})


def test_jobs_and_num_classes_are_bounded(tmp_path, capsys):
    from sparsetopo.models import build

    with pytest.raises(StudyConfigError, match=r"'run.jobs'.*must be in \[1, 1024\], got 100000"):
        config_from_dict({**GRID, "run": {"jobs": 100000}})
    with pytest.raises(ValidationError, match=r"num_classes must be in \[2, 1000000\], got 1000000000"):
        build("resnet20", num_classes=10 ** 9)
    assert main(["prune", "--model", "resnet20", "--pruner", "erk", "--sparsity", "0.9", "--num-classes",
                 "1000000000", "--out", str(tmp_path / "m.safetensors")]) == 2
    assert "--num-classes must be in [2, 1000000]" in capsys.readouterr().err
    with pytest.warns(RuntimeWarning, match="jobs = 64 exceeds the .* CPU"):
        run_study(small_grid().replace(jobs=64, dense=False, pruners=["er"], sparsities=[0.5]), tmp_path / "s",
                  cell_fn=fake_cell, progress=False)


def test_device_and_data_root_are_checked_before_any_cell(tmp_path):
    config = config_from_dict({**GRID, "grid": {**GRID["grid"], "datasets": ["cifar10"]},
                               "data": {"root": str(tmp_path / "no-data")}})
    with pytest.raises(Exception, match="cifar-10-binary.tar.gz.*not found"):
        run_study(config, tmp_path / "s", cell_fn=fake_cell, progress=False)
    assert not (tmp_path / "s").exists()  # nothing ran, nothing written
    with pytest.raises(StudyConfigError, match="'run.device'.*unknown device 'gpu0'"):
        config_from_dict({**GRID, "run": {"device": "gpu0"}})
    if not torch.cuda.is_available():
        config = config_from_dict({**GRID, "run": {"device": "cuda"}})  # spelled right: status can read it
        with pytest.raises(StudyConfigError, match="'run.device'.*CUDA is not available"):
            run_study(config, tmp_path / "s", cell_fn=fake_cell, progress=False)
        assert not (tmp_path / "s").exists()


# --- guarded writes: disk full -----------------------------------------------------------------------

class FullDisk:
    """Makes every atomic write of this process fail with ENOSPC once switched on (a full disk)."""

    def __init__(self, monkeypatch):
        self.full = False
        real = _io.os.replace

        def replace(src, dst):
            if self.full:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(dst))
            return real(src, dst)

        monkeypatch.setattr(_io.os, "replace", replace)


@pytest.fixture
def full_disk(monkeypatch):
    return FullDisk(monkeypatch)


def filling_cell(spec, cell_dir, **kwargs):
    """``fake_cell`` whose ``snip`` cells fill the disk on their way (every later write fails)."""
    result = fake_cell(spec, cell_dir, **kwargs)
    if spec.pruner == "snip" and spec.sparsity == 0.5:
        filling_cell.disk.full = True
        _io.atomic_write_bytes(cell_dir / "checkpoint.pt", b"x" * 1000)  # the write that hits the full disk
    return result


def test_disk_full_fails_cells_by_name_keeps_pool_and_resumes(tmp_path, full_disk, capsys):
    config = small_grid()
    reference = run_study(config, tmp_path / "ref", cell_fn=fake_cell, progress=False)
    assert reference.complete
    out = tmp_path / "s"
    run_study(config.replace(pruners=["er"]), out, cell_fn=fake_cell, progress=False)  # an earlier pool
    before = (out / "pool.parquet").read_bytes(), (out / "pool.csv").read_bytes()
    filling_cell.disk = full_disk
    report = run_study(config, out, cell_fn=filling_cell, progress=False)  # runs on; never raises
    failed = [o for o in report.outcomes if o.state == "failed"]
    assert failed and all("OutputError" in o.error and "No space left on device [ENOSPC]" in o.error for o in failed)
    assert len(failed) == len(report.outcomes) == 2  # the cell after the one that filled the disk was tried too
    assert report.pool_error and "ENOSPC" in report.pool_error
    assert ((out / "pool.parquet").read_bytes(), (out / "pool.csv").read_bytes()) == before  # never damaged
    assert not list(out.rglob("*.tmp"))
    full_disk.full = False  # space freed: the rerun finishes and equals the uninterrupted run
    again = run_study(config, out, cell_fn=fake_cell, progress=False)
    assert again.complete and again.pool_error is None
    for got, want in zip(tables(out), tables(tmp_path / "ref")):
        pd.testing.assert_frame_equal(got, want)


def test_disk_full_on_the_command_line_is_one_line(tmp_path, full_disk, capsys):
    full_disk.full = True
    rc = main(["prune", "--model", "conv6", "--pruner", "erk", "--sparsity", "0.9", "--num-classes", "10",
               "--out", str(tmp_path / "m.safetensors")])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("error: cannot write") and "[ENOSPC]" in err and "Traceback" not in err
    assert not list(tmp_path.iterdir())  # no temporary file left


def _mount_tmpfs(path: Path, size: str, *options: str) -> bool:
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        return False
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", ",".join((f"size={size}",) + options), "tmpfs", str(path)],
                          capture_output=True)
    return done.returncode == 0


@pytest.fixture
def tmpfs(tmp_path):
    """A real 512 KiB tmpfs (root only; skipped where the machine forbids mounts)."""
    mount = tmp_path / "tmpfs"
    if not _mount_tmpfs(mount, "512k"):
        pytest.skip("cannot mount a tmpfs here (needs root and mount rights)")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def blob_cell(spec, cell_dir, **kwargs):
    """``fake_cell`` that also writes a 200 KiB checkpoint (a 512 KiB disk fills after two cells)."""
    _io.atomic_write_bytes(cell_dir / "checkpoint.pt", os.urandom(200 * 1024))
    return fake_cell(spec, cell_dir, **kwargs)


def test_real_full_tmpfs(tmpfs, tmp_path):
    config = small_grid()
    report = run_study(config, tmpfs / "s", cell_fn=blob_cell, progress=False)
    failed = [o for o in report.outcomes if o.state == "failed"]
    assert failed and any("No space left on device" in o.error for o in failed)
    assert report.count("done") + len(failed) == len(report.outcomes) == len(config.cells())
    subprocess.run(["mount", "-o", "remount,size=8m", str(tmpfs)], check=True)  # space freed
    again = run_study(config, tmpfs / "s", cell_fn=blob_cell, progress=False)
    assert again.complete
    reference = run_study(config, tmp_path / "ref", cell_fn=fake_cell, progress=False)
    assert reference.complete
    for got, want in zip(tables(tmpfs / "s"), tables(tmp_path / "ref")):
        pd.testing.assert_frame_equal(got, want)


# --- output paths checked before any work -----------------------------------------------------------

@pytest.fixture
def read_only_dir(tmp_path):
    """A folder nobody may write: a read-only tmpfs for root (root ignores modes), else mode 0555."""
    folder = tmp_path / "ro"
    if os.geteuid() == 0:
        if not _mount_tmpfs(folder, "64k", "ro"):
            pytest.skip("cannot mount a read-only tmpfs here")
        yield folder
        subprocess.run(["umount", "-l", str(folder)], check=False)
        return
    folder.mkdir()
    folder.chmod(0o555)
    yield folder
    folder.chmod(0o755)


def test_unwritable_outputs_are_refused_before_work(read_only_dir, tmp_path, capsys):
    study = tmp_path / "study.toml"
    study.write_text('[grid]\nmodels = ["conv6"]\ndatasets = ["digits"]\nsparsities = [0.9]\npruners = ["er"]\n')
    cases = {
        "study run": ["study", "run", str(study), "--out", str(read_only_dir / "s")],
        "study pool": ["study", "pool", str(read_only_dir)],
        "prune": ["prune", "--model", "conv6", "--pruner", "erk", "--sparsity", "0.9", "--num-classes", "10",
                  "--out", str(read_only_dir / "m.safetensors")],
        "train": ["train", "--model", "conv6", "--out", str(read_only_dir / "t")],
        "encode": ["encode", "--model", "conv6", "--out", str(read_only_dir / "g.npz")],
        "analyze": ["analyze", "missing.parquet", "--out", str(read_only_dir / "report")],
    }
    for name, argv in cases.items():
        assert main(argv) == 2, name
        err = capsys.readouterr().err
        assert err.startswith("error:") and "cannot write in" in err and "Traceback" not in err, (name, err)


def test_file_where_a_folder_is_meant_and_the_reverse(tmp_path, capsys):
    a_file = tmp_path / "report.txt"
    a_file.write_text("keep me")
    assert main(["analyze", str(tmp_path / "missing.parquet"), "--out", str(a_file)]) == 2
    assert "is a file, not a directory" in capsys.readouterr().err  # before reading the pool
    assert main(["study", "pool", str(a_file)]) == 2
    assert "is a file, not a directory" in capsys.readouterr().err
    (tmp_path / "dir.csv").mkdir()
    assert main(["metrics", "--model", "conv6", "--out", str(tmp_path / "dir.csv")]) == 2
    assert "is a directory" in capsys.readouterr().err
    assert a_file.read_text() == "keep me"


# --- corrupted results, status wording, permissions, closed stdout -----------------------------------

def test_corrupted_result_is_quarantined_and_rerun(tmp_path, capsys):
    config = small_grid()
    out = tmp_path / "s"
    assert run_study(config, out, cell_fn=fake_cell, progress=False).complete
    pool = tables(out)
    store = StudyStore(out)
    broken, foreign = config.cells()[1], config.cells()[2]
    store.result_path(broken).write_text('{"accuracy": 0.5, "cell_id": "resnet20-')  # torn / garbage
    store.result_path(foreign).write_text(json.dumps({"cell_id": "another", "accuracy": 0.4}))
    with pytest.warns(CorruptResultWarning, match="result.json' is corrupted .*moved to result.json.corrupt-"):
        assert main(["study", "status", str(out)]) == 1  # status names the problem and goes on
    assert "2 pending" in capsys.readouterr().out
    assert len(list(out.glob("cells/*/result.json.corrupt-*"))) == 2  # set aside, not deleted
    with warnings.catch_warnings():
        warnings.simplefilter("error", CorruptResultWarning)
        again = run_study(config, out, cell_fn=fake_cell, progress=False)  # nothing left to warn about
    assert again.complete and again.count("done") == 2
    for got, want in zip(tables(out), pool):
        pd.testing.assert_frame_equal(got, want)


def test_status_of_an_interrupted_dense_cell(tmp_path):
    config = small_grid()
    store = StudyStore(tmp_path / "s")
    store.save_config(config)
    dense = config.cells()[0]
    assert dense.is_dense
    store.cell_dir(dense).mkdir(parents=True)
    assert store.status(dense).reason == "interrupted before training (dense baseline)"


def test_files_get_the_umask_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        save_masks({"w": torch.ones(2, 2, dtype=torch.bool)}, tmp_path / "m.safetensors")
        _io.atomic_write_text(tmp_path / "t.txt", "x")
    finally:
        os.umask(old)
    for name in ("m.safetensors", "t.txt"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o644, name


def test_closed_stdout_is_not_a_traceback(tmp_path):
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before the first line (`| head -0`)
    done = subprocess.run([sys.executable, "-m", "sparsetopo.cli", "prune", "--model", "conv6", "--pruner", "erk",
                           "--sparsity", "0.9", "--num-classes", "10", "--out", str(tmp_path / "m.safetensors")],
                          stdout=write_end, stderr=subprocess.PIPE, text=True, timeout=120)
    os.close(write_end)
    assert done.returncode == 141 and "Traceback" not in done.stderr and "BrokenPipe" not in done.stderr, done.stderr
    assert (tmp_path / "m.safetensors").is_file()  # the work itself was done and saved


# --- graph files validated on load --------------------------------------------------------------------

def _save_npz(path, **arrays):
    with open(path, "wb") as fh:
        np.savez(fh, **arrays)


def _npz_with_member_header(path, arrays, name, shape):
    """An .npz whose member ``name`` has a header claiming ``shape`` but only its real bytes."""
    import io
    import zipfile

    with zipfile.ZipFile(path, "w") as archive:
        for key, value in arrays.items():
            buffer = io.BytesIO()
            if key == name:
                np.lib.format.write_array_header_1_0(
                    buffer, {"descr": np.lib.format.dtype_to_descr(value.dtype), "fortran_order": False,
                             "shape": shape})
                buffer.write(value.tobytes())
            else:
                np.save(buffer, value)
            archive.writestr(f"{key}.npy", buffer.getvalue())


def test_crafted_and_truncated_graph_files_are_named_errors(tmp_path):
    from sparsetopo.graph import BipartiteGraph, MultipartiteGraph, load_graph, save_bipartite_npz
    from sparsetopo.errors import CheckpointError

    graph = MultipartiteGraph(src=[0, 1], dst=[2, 2], weight=[1.0, -2.0], num_nodes=3, layer_offsets=[0, 2, 3],
                              layer_names=("input", "fc"))
    graph.save_npz(tmp_path / "g.npz")
    assert load_graph(tmp_path / "g.npz") == graph
    mge = dict(np.load(tmp_path / "g.npz"))
    layers = [BipartiteGraph("a", 2, 2, [0, 1], [1, 0], [1.0, 1.0]), BipartiteGraph("b", 2, 1, [0], [0], [1.0])]
    save_bipartite_npz(layers, tmp_path / "r.npz")
    assert [g.num_edges for g in load_graph(tmp_path / "r.npz")] == [2, 1]
    rolled = dict(np.load(tmp_path / "r.npz"))
    data = (tmp_path / "g.npz").read_bytes()
    (tmp_path / "truncated.npz").write_bytes(data[: len(data) * 2 // 3])
    bad = {
        "truncated": None,
        "num_nodes_array": ({**mge, "num_nodes": np.array([3, 3])}, "'num_nodes' must be a 0-D array"),
        "num_nodes_huge": ({**mge, "num_nodes": np.int64(10 ** 12), "layer_offsets": np.array([0, 2, 10 ** 12])},
                           "num_nodes = 1000000000000 is outside"),
        "nan_weight": ({**mge, "weight": np.array([np.nan, 1], np.float32)}, "NaN or infinite"),
        "string_ids": ({**mge, "src": np.array(["a", "b"])}, "'src' must be a 1-D array of kind 'iu'"),
        "missing": ({k: v for k, v in mge.items() if k != "dst"}, "field 'dst' is missing"),
        "decreasing_layers": ({**mge, "layer_offsets": np.array([0, 3, 2, 3]),
                               "layer_names": np.array(["a", "b", "c"])}, "layer_offsets must"),
        "decreasing_edges": ({**rolled, "edge_offsets": np.array([0, 3, 2])}, "edge_offsets must start at 0, never"),
        "id_out_of_layer": ({**rolled, "num_left": np.array([1, 2])}, "layer 'a': src ids must lie in"),
        "layer_count": ({**rolled, "num_right": np.array([2])}, "num_right has 1 entries for 2 layers"),
    }
    for name, case in bad.items():
        path = tmp_path / f"{name}.npz"
        if case is not None:
            _save_npz(path, **case[0])
        with pytest.raises(CheckpointError, match=f"graph file '{path}'.*" + (case[1] if case else "")):
            load_graph(path)
    crafted = tmp_path / "crafted.npz"
    _npz_with_member_header(crafted, mge, "src", (10 ** 11,))  # 400 GB claimed, 8 bytes present
    with pytest.raises(CheckpointError, match="'src' claims 400000000000 bytes of data but the file holds"):
        load_graph(crafted)
    for path, why in ((tmp_path, "is a directory"), (tmp_path / "nope.npz", "does not exist")):
        with pytest.raises(CheckpointError, match=why):
            load_graph(path)


def test_metrics_cli_on_a_crafted_graph_is_one_line(tmp_path, capsys):
    _save_npz(tmp_path / "g.npz", kind=np.array("rolled"), names=np.array(["a"]), num_left=np.array([2]),
              num_right=np.array([2]), edge_offsets=np.array([0, 5]), src=np.zeros(2, np.int32),
              dst=np.zeros(2, np.int32), weight=np.ones(2, np.float32))
    assert main(["metrics", str(tmp_path / "g.npz")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: graph file") and "edge_offsets" in err and err.count("\n") == 1


# --- a study file is data: cell_function only from the allow-list -----------------------------------

def test_study_file_cannot_name_arbitrary_code(tmp_path, capsys):
    from sparsetopo.study import load_config
    from sparsetopo.study.cell import register_cell_function

    path = tmp_path / "evil.toml"
    base = '[grid]\nmodels = ["conv6"]\ndatasets = ["digits"]\nsparsities = [0.9]\npruners = ["er"]\n[run]\n'
    path.write_text(base + 'cell_function = "os:system"\n')
    with pytest.raises(StudyConfigError, match="'os:system' is not a registered cell function.*--allow-custom-cell"):
        load_config(path)
    assert main(["study", "run", str(path), "--out", str(tmp_path / "s")]) == 2
    assert "not a registered cell function" in capsys.readouterr().err
    assert not (tmp_path / "s").exists()  # refused when validated: before any folder or cell
    path.write_text(base + 'cell_function = "no_such_module_15:cell"\n')  # allowed, but checked now
    with pytest.raises(StudyConfigError, match="'no_such_module_15:cell' cannot be imported"):
        load_config(path, allow_custom_cell=True)
    path.write_text(base + 'cell_function = "test_study_runner:fake_cell"\n')
    assert load_config(path, allow_custom_cell=True).cell_function == "test_study_runner:fake_cell"
    name = register_cell_function(fake_cell)  # a package registers its cell: files may name it
    try:
        assert load_config(path).cell_function == name == "test_study_runner:fake_cell"
    finally:
        from sparsetopo.study.cell import CELL_FUNCTIONS

        CELL_FUNCTIONS.pop(name)
    assert load_config(path, allow_custom_cell=True).replace(jobs=2).allow_custom_cell  # kept by overrides


# --- fully pruned layers, library misuse -------------------------------------------------------------

def test_fully_pruned_layers_are_named_and_can_be_refused(tmp_path, capsys):
    from sparsetopo.encoding import encode
    from sparsetopo.errors import FullyPrunedWarning
    from sparsetopo.masks import prunable_parameters
    from sparsetopo.models import build

    model = build("conv6", seed=0, input_size=8)
    masks = {name: torch.ones(p.shape, dtype=torch.bool) for name, p in prunable_parameters(model).items()}
    masks[list(masks)[-1]].zero_()
    middle = list(masks)[2]
    masks[middle].zero_()
    last = list(masks)[-1]
    for kind in ("rolled", "mge"):
        with pytest.warns(FullyPrunedWarning, match=f"2 of {len(masks)} layer\\(s\\) fully pruned.*{middle}.*"
                                                    f"the network is cut \\({last} empty\\)"):
            encode(model, (3, 8, 8), kind=kind, masks=masks)
    save_masks(masks, tmp_path / "m.safetensors")
    argv = ["encode", "--model", "conv6", "--input-shape", "3", "8", "8", "--masks", str(tmp_path / "m.safetensors"),
            "--encoding", "rolled", "--out", str(tmp_path / "g.npz")]
    with pytest.warns(FullyPrunedWarning):
        assert main(argv) == 0  # a warning by default
    assert main(argv + ["--refuse-fully-pruned"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: encoding (rolled): 2 of") and "Traceback" not in err


def test_library_misuse_gets_named_errors(tmp_path):
    from sparsetopo.data import load_dataset
    from sparsetopo.encoding import encode
    from sparsetopo.errors import MaskError
    from sparsetopo.masks import load_masks
    from sparsetopo.models import build
    from sparsetopo.pruning import prune

    with pytest.raises(ValidationError, match=r"model must be a torch.nn.Module \(e.g. sparsetopo.models.build"):
        prune("resnet20", "snip", 0.9)
    with pytest.raises(OutputError, match="is a directory; give a file name"):
        save_masks({"w": torch.ones(2, dtype=torch.bool)}, tmp_path)
    with pytest.raises(MaskError, match="is a directory, not a mask file"):
        load_masks(tmp_path)
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(OutputError, match="pipe'.*device, FIFO or socket, not a regular file"):
        save_masks({"w": torch.ones(2, dtype=torch.bool)}, fifo)
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)  # the special file itself is left alone
    target, link = tmp_path / "masks.st", tmp_path / "latest.st"
    link.symlink_to(target.name)
    save_masks({"w": torch.ones(2, dtype=torch.bool)}, link)
    assert link.is_symlink() and torch.equal(load_masks(target)["w"], torch.ones(2, dtype=torch.bool))
    model = build("conv6", seed=0)
    for kind in ("mge", "rolled", "rolled_channel"):
        with pytest.raises(ValidationError, match=r"input[_ ]shape \(2, 32, 32\)"):
            encode(model, (2, 32, 32), kind=kind)
    bundle = load_dataset("digits")
    for bad in ((-5, 3), (3, 0), ("3", None), (2.5, None)):
        with pytest.raises(ValidationError, match="num_train|num_test"):
            bundle.subset(*bad)
    assert len(bundle.subset(5, 3).train) == 5

