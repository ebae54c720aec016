"""Checks the commands run on their arguments before any work, so a mistake costs nothing and reads clearly."""
from __future__ import annotations

from pathlib import Path

from ..errors import ValidationError


def _file_in_the_way(paths) -> Path | None:
    return next((p for p in paths if p.exists() and not p.is_dir()), None)


def check_output_file(path: str, example: str = "out.file") -> None:
    """``path`` must name a file that can be created: not a directory, not under a regular file."""
    out = Path(path)
    if out.is_dir():
        raise ValidationError(f"--out {path!r} is a directory; give a file name, e.g. {str(out / example)!r}")
    blocked = _file_in_the_way(out.parents)
    if blocked is not None:
        raise ValidationError(f"--out {path!r}: {str(blocked)!r} is a file, not a directory")


def check_output_dir(path: str) -> None:
    """``path`` must be a directory or creatable as one (not an existing file, not under a file)."""
    blocked = _file_in_the_way((Path(path), *Path(path).parents))
    if blocked is not None:
        raise ValidationError(f"--out {path!r}: {str(blocked)!r} is a file, not a directory")


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
