"""Study files and presets: validation names the offending key, before any work starts."""
import pytest

from sparsetopo.cli import main
from sparsetopo.errors import StudyConfigError
from sparsetopo.study import CellSpec, config_from_dict, load_config, load_preset

GOOD = """
[grid]
models = ["resnet20"]
datasets = ["digits"]
sparsities = [0.9, 0.98]
pruners = ["snip", "er"]
seeds = [0, 1]

[recipe]
epochs = 2
"""


def write(tmp_path, text, name="study.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_good_file_gives_dense_then_sparse_cells(tmp_path):
    config = load_config(write(tmp_path, GOOD))
    cells = config.cells()
    assert len(cells) == 2 + 2 * 2 * 2  # 2 dense seeds + sparsities x pruners x seeds
    assert [c.is_dense for c in cells[:2]] == [True, True]
    assert {c.pruner for c in cells[2:]} == {"snip", "er"}
    assert len({c.cell_id for c in cells}) == len(cells)
    assert config.epochs == 2 and config.executor == "local" and config.jobs == 1


def test_cell_identity_is_stable_and_depends_on_every_result_field():
    spec = CellSpec("resnet20", "digits", "snip", 0.9, 0, 2)
    assert CellSpec.from_dict(spec.to_dict()) == spec
    assert CellSpec.from_dict(spec.to_dict()).digest == spec.digest
    changed = [CellSpec("resnet20", "digits", "snip", 0.9, 1, 2), CellSpec("resnet20", "digits", "snip", 0.9, 0, 3),
               CellSpec("resnet20", "digits", "snip", 0.9, 0, 2, train_subset=10),
               CellSpec("resnet20", "digits", "snip", 0.9, 0, 2, encodings=("mge",))]
    assert len({spec.digest} | {c.digest for c in changed}) == 5
    assert spec.cell_id.startswith("resnet20-digits-snip-0.9-s0-")


def test_dense_cells_shared_across_output_choices():
    base = dict(grid=dict(models=["resnet20"], datasets=["digits"], sparsities=[0.9], pruners=["er"]))
    a = config_from_dict({**base, "outputs": {"encodings": ["mge"]}}).cells()
    b = config_from_dict(base).cells()
    assert a[0].cell_id == b[0].cell_id and a[1].cell_id != b[1].cell_id


def test_presets():
    demo = load_preset("demo")
    assert demo.datasets == ("digits",) and len(demo.pruners) == 7 and demo.epochs != "paper"
    paper = load_preset("paper")
    cells = paper.cells()
    assert sum(not c.is_dense for c in cells) == 4 * 3 * 5 * 7 * 3 == 1260
    assert sum(c.is_dense for c in cells) == 4 * 3 * 3
    assert paper.epochs == "paper" and paper.sparsities == (0.6, 0.8, 0.9, 0.95, 0.98)
    assert paper.pruners == ("snip", "grasp", "synflow", "prospr", "uniform", "er", "erk")  # the paper's, unchanged
    modern = load_preset("modern")
    new = {"synflow_l2", "iter_snip", "force", "ntk_sap", "phew", "uniform_plus", "erk_plus", "igq"}
    assert new <= set(modern.pruners) and modern.sparsities == paper.sparsities and modern.models == paper.models
    assert sum(not c.is_dense for c in modern.cells()) == 4 * 3 * 5 * len(modern.pruners) * 3
    with pytest.raises(StudyConfigError, match="preset"):
        load_preset("huge")


def test_overrides_are_validated():
    config = load_preset("demo").replace(jobs=3, executor="ray", address="auto", epochs=1)
    assert (config.jobs, config.executor, config.address, config.epochs) == (3, "ray", "auto", 1)
    with pytest.raises(StudyConfigError, match="run.executor"):
        load_preset("demo").replace(executor="slurm")
    with pytest.raises(StudyConfigError, match="run.jobs"):
        load_preset("demo").replace(jobs=0)


BAD = {
    "unknown model": ('models = ["resnet20"]', 'models = ["resnet101"]', "grid.models"),
    "unknown pruner": ('pruners = ["snip", "er"]', 'pruners = ["snip", "magnitude"]', "grid.pruners"),
    "unknown dataset": ('datasets = ["digits"]', 'datasets = ["mnist"]', "grid.datasets"),
    "sparsity 1": ("sparsities = [0.9, 0.98]", "sparsities = [0.9, 1.0]", "grid.sparsities"),
    "sparsity 0": ("sparsities = [0.9, 0.98]", "sparsities = [0, 0.5]", "grid.sparsities"),
    "sparsity negative": ("sparsities = [0.9, 0.98]", "sparsities = [-0.5]", "grid.sparsities"),
    "sparsity text": ("sparsities = [0.9, 0.98]", 'sparsities = ["high"]', "grid.sparsities"),
    "empty grid": ('pruners = ["snip", "er"]', "pruners = []", "grid.pruners"),
    "empty seeds": ("seeds = [0, 1]", "seeds = []", "grid.seeds"),
    "duplicate": ('models = ["resnet20"]', 'models = ["resnet20", "resnet20"]', "grid.models"),
    "unknown key": ("seeds = [0, 1]", "seeds = [0, 1]\nlearning_rate = 0.1", "grid.learning_rate"),
    "missing axis": ('models = ["resnet20"]', "", "grid.models"),
    "bad epochs": ("epochs = 2", "epochs = -3", "recipe.epochs"),
    "unknown section": ("[recipe]", "[optimizer]", "optimizer"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_files_name_the_key(tmp_path, case):
    old, new, key = BAD[case]
    assert old in GOOD
    path = write(tmp_path, GOOD.replace(old, new))
    with pytest.raises(StudyConfigError) as info:
        load_config(path)
    assert key in str(info.value) and str(path) in str(info.value)


def test_cli_rejects_bad_file_before_any_work(tmp_path, capsys):
    path = write(tmp_path, GOOD.replace('pruners = ["snip", "er"]', 'pruners = ["snip", "magic"]'))
    out = tmp_path / "study"
    assert main(["study", "run", str(path), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "grid.pruners" in err and "magic" in err
    assert not out.exists()  # nothing was created, nothing ran
    assert main(["study", "run", str(path), "--preset", "demo", "--out", str(out)]) == 2
    assert main(["study", "run", str(write(tmp_path, GOOD, "ok.toml")), "--out", str(out),
                 "--device", "tpu"]) == 2
    assert "run.device" in capsys.readouterr().err and not out.exists()
    assert main(["study", "run", str(tmp_path / "missing.toml"), "--out", str(out)]) == 2
    assert main(["study", "status", str(tmp_path)]) == 2  # not a study directory


def test_not_toml(tmp_path):
    with pytest.raises(StudyConfigError, match="not valid TOML"):
        load_config(write(tmp_path, "[grid\nmodels = "))


def test_cli_out_that_is_a_file_is_a_one_line_error(tmp_path, capsys):
    blocker = write(tmp_path, "not a directory", "taken")
    for out in (blocker, blocker / "sub"):
        assert main(["study", "run", str(write(tmp_path, GOOD, "ok.toml")), "--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: --out") and "Traceback" not in err
    assert blocker.read_text() == "not a directory"
