"""Study descriptions: a small TOML file (or a preset) -> a validated :class:`StudyConfig` -> cells.

A study file has four sections; every key is optional except the grid axes::

    [grid]                       # the cartesian product that is trained and measured
    models     = ["resnet20"]    # conv6 | resnet20 | resnet32 | wrn28_2
    datasets   = ["digits"]      # cifar10 | cifar100 | tiny_imagenet32 | digits
    sparsities = [0.9, 0.98]     # each strictly inside (0, 1)
    pruners    = ["snip", "er"]  # or "all" (the 7 pruners)
    seeds      = [0]
    dense      = true            # one dense baseline cell per (model, dataset, seed)

    [recipe]
    epochs = 3                   # or "paper" (160 / 100 epochs, the paper's recipe)

    [data]
    root = "~/data"              # dataset root (default: the data stage's default)
    download = false             # fetch missing archives from their official URLs
    train_subset = 512           # optional: first N items of a fixed permutation (smoke tests)
    test_subset = 256

    [outputs]
    encodings = ["mge", "rolled", "rolled_channel"]
    metrics   = ["topometrics", "ramanujan", "layer_density"]   # or also "effective" (metrics.md §5b)

    [run]
    executor = "local"           # local | ray
    jobs = 2                     # concurrent cells
    address = "auto"             # Ray cluster address (executor = "ray")
    device = "cpu"               # cpu | cuda | cuda:N
    cell_function = "pkg.mod:fn" # replaces the real cell: registered functions only, unless the
                                 # command line says --allow-custom-cell (a study file is data, not code)

Validation happens here, once, before any work starts: an unknown section or key, an unknown
model / dataset / pruner / encoding / metric, a sparsity outside (0, 1), an empty axis or a wrong type
raises :class:`StudyConfigError` naming the key (``grid.pruners``).
"""
from __future__ import annotations

import dataclasses
import hashlib
import importlib.resources
import json
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from ..encoding.registry import ENCODINGS
from ..errors import StudyConfigError, ValidationError
from ..metrics.registry import DEFAULT_GROUPS as METRICS
from ..metrics.registry import GROUPS as METRIC_GROUPS
from ..validation import check_device, check_scalar, check_seed, check_sparsity

EXECUTORS = ("local", "ray")
PRESETS = ("demo", "paper", "modern")
#: most concurrent cells a study may ask for (a typo such as jobs = 20000 is refused, not forked);
#: the runner also warns when a local run asks for more cells at once than the machine has CPUs
MAX_JOBS = 1024

#: section -> allowed keys (anything else is rejected, naming ``section.key``)
SCHEMA: dict[str, tuple[str, ...]] = {
    "grid": ("models", "datasets", "sparsities", "pruners", "seeds", "dense"),
    "recipe": ("epochs",),
    "data": ("root", "download", "train_subset", "test_subset"),
    "outputs": ("encodings", "metrics"),
    "run": ("executor", "jobs", "address", "device", "cell_function"),
}


def _registry_names() -> dict[str, tuple[str, ...]]:
    """The valid model / dataset / pruner names, read from the stage registries."""
    from ..data import DATASET_NAMES
    from ..models import MODEL_NAMES
    from ..pruning import PRUNER_NAMES

    return {"models": tuple(MODEL_NAMES), "datasets": tuple(DATASET_NAMES), "pruners": tuple(PRUNER_NAMES)}


@dataclass(frozen=True)
class CellSpec:
    """One grid point: everything that determines its result (and so its hash), nothing else.

    ``pruner is None`` (and ``sparsity is None``) marks a dense baseline cell.
    """

    model: str
    dataset: str
    pruner: str | None
    sparsity: float | None
    seed: int
    epochs: int | str
    train_subset: int | None = None
    test_subset: int | None = None
    encodings: tuple[str, ...] = ENCODINGS
    metrics: tuple[str, ...] = METRICS

    @property
    def is_dense(self) -> bool:
        return self.pruner is None

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["encodings"], out["metrics"] = list(self.encodings), list(self.metrics)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "CellSpec":
        data = dict(data)
        data["encodings"] = tuple(data.get("encodings", ENCODINGS))
        data["metrics"] = tuple(data.get("metrics", METRICS))
        return cls(**data)

    @property
    def digest(self) -> str:
        """SHA-256 of the canonical JSON of the spec (sorted keys): the cell's identity."""
        text = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()

    @property
    def cell_id(self) -> str:
        """Readable, unique directory name: ``resnet20-digits-snip-0.9-s0-<12 hex of the digest>``."""
        kind = "dense" if self.is_dense else f"{self.pruner}-{self.sparsity:g}"
        return f"{self.model}-{self.dataset}-{kind}-s{self.seed}-{self.digest[:12]}"


@dataclass(frozen=True)
class StudyConfig:
    """A validated study: grid axes, recipe, outputs, and how to run (not part of cell identity)."""

    models: tuple[str, ...]
    datasets: tuple[str, ...]
    sparsities: tuple[float, ...]
    pruners: tuple[str, ...]
    seeds: tuple[int, ...]
    dense: bool = True
    epochs: int | str = "paper"
    data_root: str | None = None
    download: bool = False
    train_subset: int | None = None
    test_subset: int | None = None
    encodings: tuple[str, ...] = ENCODINGS
    metrics: tuple[str, ...] = METRICS
    executor: str = "local"
    jobs: int = 1
    address: str | None = None
    device: str | None = None
    cell_function: str | None = None
    source: str = field(default="<dict>", compare=False)
    #: ``run.cell_function`` may name unregistered code (CLI --allow-custom-cell); never written to a file
    allow_custom_cell: bool = field(default=False, compare=False)

    def cells(self) -> list[CellSpec]:
        """Dense baselines first (one per model × dataset × seed), then the sparse grid."""
        common = dict(epochs=self.epochs, train_subset=self.train_subset, test_subset=self.test_subset)
        # A dense cell is only trained (no graph is measured), so its identity leaves outputs out:
        # studies that differ only in encodings / metrics share their dense baselines.
        dense = [CellSpec(m, d, None, None, s, **common, encodings=(), metrics=())
                 for m in self.models for d in self.datasets for s in self.seeds] if self.dense else []
        sparse = [CellSpec(m, d, p, sp, s, **common, encodings=self.encodings, metrics=self.metrics)
                  for m in self.models for d in self.datasets for sp in self.sparsities
                  for p in self.pruners for s in self.seeds]
        return dense + sparse

    def check_runnable(self) -> None:
        """What a study file cannot say about itself, checked before any cell runs: the device exists
        here (local executor; a Ray cluster's workers are checked by Ray) and every dataset is either
        cached, its archive present under the data root, or ``download`` is on."""
        from ..data import check_dataset_available

        if self.executor == "local":
            try:
                check_device(self.device)
            except ValidationError as exc:
                raise StudyConfigError(f"'run.device': {exc} (in {self.source})") from None
        for dataset in self.datasets:
            check_dataset_available(dataset, self.data_root, download=self.download)

    def to_toml_dict(self) -> dict[str, dict[str, Any]]:
        """The config as the nested sections of a study file (``None`` values left out)."""
        sections = {
            "grid": dict(models=list(self.models), datasets=list(self.datasets),
                         sparsities=list(self.sparsities), pruners=list(self.pruners),
                         seeds=list(self.seeds), dense=self.dense),
            "recipe": dict(epochs=self.epochs),
            "data": dict(root=self.data_root, download=self.download, train_subset=self.train_subset, test_subset=self.test_subset),
            "outputs": dict(encodings=list(self.encodings), metrics=list(self.metrics)),
            "run": dict(executor=self.executor, jobs=self.jobs, address=self.address, device=self.device,
                        cell_function=self.cell_function),
        }
        return {s: {k: v for k, v in keys.items() if v is not None} for s, keys in sections.items()}

    def replace(self, **overrides: Any) -> "StudyConfig":
        """A copy with ``overrides`` (``None`` values ignored), validated again."""
        overrides = {k: v for k, v in overrides.items() if v is not None}
        if not overrides:
            return self
        data = self.to_toml_dict()
        for key, value in overrides.items():
            section = _section_of(key)
            data[section][_toml_key(key)] = value
        return config_from_dict(data, source=f"{self.source} + overrides", allow_custom_cell=self.allow_custom_cell)


_FIELD_TO_TOML = {"data_root": ("data", "root")}


def _section_of(field_name: str) -> str:
    if field_name in _FIELD_TO_TOML:
        return _FIELD_TO_TOML[field_name][0]
    for section, keys in SCHEMA.items():
        if field_name in keys:
            return section
    raise StudyConfigError(f"unknown study setting {field_name!r}")


def _toml_key(field_name: str) -> str:
    return _FIELD_TO_TOML.get(field_name, ("", field_name))[1]


# --- loading ---------------------------------------------------------------------------------------

def load_config(path: str | os.PathLike, *, allow_custom_cell: bool = False) -> StudyConfig:
    """Read and validate a study TOML file (``allow_custom_cell``: see :func:`config_from_dict`)."""
    path = Path(path)
    if not path.is_file():
        raise StudyConfigError(f"study file {str(path)!r} does not exist")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise StudyConfigError(f"study file {str(path)!r} is not valid TOML: {exc}") from None
    return config_from_dict(data, source=str(path), allow_custom_cell=allow_custom_cell)


def load_preset(name: str) -> StudyConfig:
    """The packaged preset ``demo``, ``paper`` or ``modern`` (``study/presets/<name>.toml``)."""
    if name not in PRESETS:
        raise StudyConfigError(f"unknown preset {name!r}; choose one of: {', '.join(PRESETS)}")
    text = importlib.resources.files(__package__).joinpath("presets", f"{name}.toml").read_text("utf-8")
    return config_from_dict(tomllib.loads(text), source=f"preset {name}")


def config_from_dict(data: Mapping[str, Any], source: str = "<dict>", *, allow_custom_cell: bool = False
                     ) -> StudyConfig:
    """Validate the nested sections of a study file and build a :class:`StudyConfig`.

    Raises :class:`StudyConfigError` naming the offending ``section.key`` (and the file).
    ``allow_custom_cell`` lets ``run.cell_function`` name a function outside the registry (code).
    """
    where = f" (in {source})"
    _check_keys(data, where)
    grid, recipe = data.get("grid", {}), data.get("recipe", {})
    files, outputs, run = data.get("data", {}), data.get("outputs", {}), data.get("run", {})
    names = _registry_names()
    pruners = grid.get("pruners", "all")
    return StudyConfig(
        models=_names(grid, "models", names["models"], where, required=True),
        datasets=_names(grid, "datasets", names["datasets"], where, required=True),
        sparsities=_sparsities(grid, where),
        pruners=names["pruners"] if pruners == "all" else _names(grid, "pruners", names["pruners"], where),
        seeds=_seeds(grid, where),
        dense=_bool(grid, "dense", True, "grid", where),
        epochs=_epochs(recipe, where),
        data_root=_optional_str(files, "root", "data", where),
        download=_bool(files, "download", False, "data", where),
        train_subset=_optional_positive_int(files, "train_subset", "data", where),
        test_subset=_optional_positive_int(files, "test_subset", "data", where),
        encodings=_names(outputs, "encodings", ENCODINGS, where, default=ENCODINGS, section="outputs"),
        metrics=_names(outputs, "metrics", METRIC_GROUPS, where, default=METRICS, section="outputs"),
        executor=_choice(run, "executor", EXECUTORS, "local", where),
        jobs=_optional_positive_int(run, "jobs", "run", where, max_val=MAX_JOBS) or 1,
        address=_optional_str(run, "address", "run", where),
        device=_device(run, where),
        cell_function=_cell_function(run, where, allow_custom_cell),
        source=source,
        allow_custom_cell=allow_custom_cell,
    )


def _check_keys(data: Mapping[str, Any], where: str) -> None:
    if not isinstance(data, Mapping):
        raise StudyConfigError(f"a study must be a table of sections{where}")
    for section, keys in data.items():
        if section not in SCHEMA:
            raise StudyConfigError(f"unknown section {section!r}{where}; expected: {', '.join(SCHEMA)}")
        if not isinstance(keys, Mapping):
            raise StudyConfigError(f"{section!r} must be a table [{section}]{where}")
        for key in keys:
            if key not in SCHEMA[section]:
                raise StudyConfigError(f"unknown key '{section}.{key}'{where}; "
                                       f"[{section}] accepts: {', '.join(SCHEMA[section])}")


def _list(table: Mapping[str, Any], key: str, section: str, where: str, required: bool) -> list | None:
    if key not in table:
        if required:
            raise StudyConfigError(f"missing key '{section}.{key}'{where}")
        return None
    value = table[key]
    if isinstance(value, (str, int, float)) and not isinstance(value, bool):
        value = [value]
    if not isinstance(value, list):
        raise StudyConfigError(f"'{section}.{key}' must be a list{where}, got {value!r}")
    if not value:
        raise StudyConfigError(f"'{section}.{key}' is empty{where}: the grid would have no cells")
    if len(set(map(repr, value))) != len(value):
        raise StudyConfigError(f"'{section}.{key}' has duplicate entries{where}: {value!r}")
    return value


def _names(table, key, choices, where, *, required=False, default=None, section="grid") -> tuple[str, ...]:
    values = _list(table, key, section, where, required)
    if values is None:
        if default is None:
            raise StudyConfigError(f"missing key '{section}.{key}'{where}")
        return tuple(default)
    for value in values:
        if value not in choices:
            raise StudyConfigError(f"'{section}.{key}': unknown name {value!r}{where}; "
                                   f"choose from: {', '.join(choices)}")
    return tuple(values)


def _sparsities(grid: Mapping[str, Any], where: str) -> tuple[float, ...]:
    values = _list(grid, "sparsities", "grid", where, required=True)
    out = []
    for value in values:
        try:
            out.append(check_sparsity(value, "'grid.sparsities'"))
        except ValidationError as exc:
            raise StudyConfigError(f"{exc}{where}") from None
    return tuple(out)


def _seeds(grid, where) -> tuple[int, ...]:
    values = _list(grid, "seeds", "grid", where, required=False)
    if values is None:
        return (0,)
    return tuple(check_seed(v, f"'grid.seeds'{where}: each seed", error=StudyConfigError) for v in values)


def _bool(table, key, default, section, where) -> bool:
    return check_scalar(table.get(key, default), f"'{section}.{key}'{where}", bool, error=StudyConfigError)


def _epochs(recipe: Mapping[str, Any], where: str) -> int | str:
    value = recipe.get("epochs", "paper")
    if value == "paper":
        return value
    return check_scalar(value, f"'recipe.epochs' (or \"paper\"){where}", int, min_val=1, error=StudyConfigError)


def _optional_str(table, key, section, where) -> str | None:
    value = table.get(key)
    if value is not None and (not isinstance(value, str) or not value):
        raise StudyConfigError(f"'{section}.{key}' must be a non-empty string{where}, got {value!r}")
    return value


def _optional_positive_int(table, key, section, where, max_val=None) -> int | None:
    value = table.get(key)
    if value is None:
        return None
    return check_scalar(value, f"'{section}.{key}'{where}", int, min_val=1, max_val=max_val, error=StudyConfigError)


def _choice(table, key, choices, default, where) -> str:
    value = table.get(key, default)
    if value not in choices:
        raise StudyConfigError(f"'run.{key}': unknown value {value!r}{where}; choose from: {', '.join(choices)}")
    return value


def _device(run: Mapping[str, Any], where: str) -> str | None:
    """The device's spelling is checked here (a study file can be read where the device is absent,
    e.g. ``study status`` on a login node); :meth:`StudyConfig.check_runnable` checks it exists."""
    value = _optional_str(run, "device", "run", where)
    if value is not None:
        try:
            check_device(value, available=False)
        except ValidationError as exc:
            raise StudyConfigError(f"'run.device': {exc}{where}") from None
    return value


def _cell_function(run: Mapping[str, Any], where: str, allow_custom: bool) -> str | None:
    """A registered cell function, or (``allow_custom``) any importable one, resolved now so that a
    typo fails before the run. Without permission nothing named by the file is imported."""
    from .cell import registered_cell_functions, resolve_cell_function

    value = _optional_str(run, "cell_function", "run", where)
    if value is None:
        return None
    if value.count(":") != 1:
        raise StudyConfigError(f"'run.cell_function' must look like 'package.module:function'{where}, "
                               f"got {value!r}")
    if value not in registered_cell_functions() and not allow_custom:
        raise StudyConfigError(
            f"'run.cell_function' = {value!r} is not a registered cell function{where}: a study file may "
            f"only name {', '.join(sorted(registered_cell_functions()))}. Naming other code is refused "
            f"because a study file could then run anything; if you trust this file, pass --allow-custom-cell "
            f"(library: allow_custom_cell=True)")
    try:
        resolve_cell_function(value)
    except StudyConfigError as exc:
        raise StudyConfigError(f"'run.cell_function': {exc}{where}") from None
    return value
