"""The study spec of a source ablation or a grid (``sskt compare --ablate-sources`` / ``--grid``, and
the Compare dialog's rows). Apart from ``study_variants`` so that the row types there need not import
``study``, which imports them."""

from __future__ import annotations

from typing import Any, Sequence

from .errors import UserInputError
from .study_variants import GRID_VAL_SPLIT, ablation_variants, grid_variants, parse_grid


def variant_study_spec(config: Any, *, ablate: bool = False, grid_items: Sequence[str] = (),
                       methods: Sequence[str] = (), seeds: int = 1, name: str = "",
                       preset_path: str = "") -> tuple[Any, list[str]]:
    """The ``StudySpec`` of an ablation or a grid over ``config`` (the CLI's and the Compare dialog's),
    and notes for the user. A grid without a held-out validation split gets one (``GRID_VAL_SPLIT``);
    every row's preset is checked now, so a grid key the method lacks is one sentence before any run."""
    from .config import from_dict, to_dict
    from .methods import METHODS
    from .study import StudySpec, run_config

    if ablate and grid_items:
        raise UserInputError("give --ablate-sources or --grid, not both in one study")
    if not ablate and not grid_items:
        raise UserInputError("an ablation or a grid study needs --ablate-sources or --grid")
    if seeds < 1:
        raise UserInputError(f"--seeds must be at least 1, not {seeds}")
    grid = parse_grid(grid_items) if grid_items else []
    notes = []
    if grid and config.data.val_split <= 0:  # the setting is chosen on validation, never on the test split
        config = from_dict(to_dict(config), overrides=[f"data.val_split={GRID_VAL_SPLIT}"], source=config.name)
        notes.append(f"grid: {GRID_VAL_SPLIT:.0%} of the training images are held out as the validation split that "
                     "chooses the setting (data.val_split); the test split is scored beside it and chooses nothing")
    preset_method = config.method.name
    if ablate:
        info = METHODS.get(preset_method)
        method = preset_method if info.uses_sources or info.min_sources else "sskt"
        variants = ablation_variants([s.display_name() for s in config.sources], method)
    else:
        variants = grid_variants(grid, tuple(methods) or tuple(dict.fromkeys(("supervised", preset_method))))
    seed_list = tuple(config.train.seed + i for i in range(seeds))
    spec = StudySpec(config=config, methods=tuple(dict.fromkeys(v.method for v in variants)), seeds=seed_list,
                     name=name, preset_path=preset_path, variants=tuple(variants))
    for variant in variants:
        if variant.method != "supervised":
            run_config(spec, variant.method, seed_list[0], variant=variant)
    return spec, notes


# ----------------------------------------------------------------------------- tables
