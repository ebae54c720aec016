"""Checks the commands run on their arguments before any work, so a mistake costs nothing and reads clearly."""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from .._io import describe_os_error
from ..errors import OutputError, ValidationError
from ..validation import check_seed


def _file_in_the_way(paths) -> Path | None:
    return next((p for p in paths if p.exists() and not p.is_dir()), None)


def _check_writable(path: str, option: str, folder: Path) -> None:
    """Create (and drop) a file in the deepest existing folder of ``folder``: the only test that sees
    read-only mounts, permissions, quotas and a full inode table alike (root passes ``os.access``)."""
    folder = next((p for p in (folder, *folder.parents) if p.is_dir()), Path("."))
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise OutputError(f"{option} {path!r}: cannot write in {str(folder)!r}: {describe_os_error(exc)}") from None


def check_output_file(path: str, example: str = "out.file", option: str = "--out") -> None:
    """``path`` must name a file that can be created: not a directory, not under a regular file, in a
    folder that can be written."""
    out = Path(path)
    if out.is_dir():
        raise ValidationError(f"{option} {path!r} is a directory; give a file name, e.g. {str(out / example)!r}")
    blocked = _file_in_the_way(out.parents)
    if blocked is not None:
        raise ValidationError(f"{option} {path!r}: {str(blocked)!r} is a file, not a directory")
    _check_writable(path, option, out.parent)


def check_output_dir(path: str, option: str = "--out") -> None:
    """``path`` must be a directory or creatable as one (not an existing file, not under a file), and
    writable."""
    blocked = _file_in_the_way((Path(path), *Path(path).parents))
    if blocked is not None:
        raise ValidationError(f"{option} {path!r}: {str(blocked)!r} is a file, not a directory")
    _check_writable(path, option, Path(path))


def seed_arg(text: str) -> int:
    """argparse ``type`` of every ``--seed``: an integer in [0, 2**63) (``validation.check_seed``)."""
    try:
        return check_seed(int(text), "--seed")
    except ValueError as exc:  # int() of a non-integer, or ValidationError (a ValueError)
        raise argparse.ArgumentTypeError(str(exc) if "--seed" in str(exc) else f"not an integer: {text!r}") from None


def check_masks_cover_model(masks, model, mask_file: str) -> None:
    """A mask file from ``sparsetopo prune`` has a mask for every prunable layer of its model; one
    that misses some was made for another model (--model, --shortcut) and would leave them dense."""
    from ..errors import MaskError
    from ..masks import prunable_parameters

    missing = [name for name in prunable_parameters(model) if name not in masks]
    if missing:
        raise MaskError(f"mask file {mask_file!r} has no mask for {len(missing)} prunable layer(s) of the model "
                        f"(e.g. {missing[0]!r}): was it made for another --model or --shortcut?")


def shortcut_option(model: str, shortcut: str | None) -> dict:
    """``{"shortcut": shortcut}`` for a model whose constructor takes that option (the model
    registry's ``MODEL_OPTIONS``), ``{}`` when ``shortcut`` is None or the model has no shortcut
    option. A caller that let the user set --shortcut explicitly checks :func:`check_takes_shortcut`."""
    from ..models import MODEL_OPTIONS

    return {"shortcut": shortcut} if shortcut is not None and "shortcut" in MODEL_OPTIONS.get(model, ()) else {}


def check_takes_shortcut(model: str) -> None:
    """--shortcut was given: the model must take it (ValidationError naming the models that do)."""
    from ..models import MODEL_OPTIONS

    if "shortcut" not in MODEL_OPTIONS.get(model, ()):
        takers = [name for name, options in MODEL_OPTIONS.items() if "shortcut" in options]
        raise ValidationError(f"--shortcut applies to {' / '.join(takers)}, not {model!r}")
