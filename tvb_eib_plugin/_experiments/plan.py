"""An experiment's routines: configured routine objects, in dependency order, checked before anything runs.

An experiment lists its routines as routine objects (``FIC(n_iterations=150)``,
``FICEIB(schedule=annealing_schedule(7, 4000))``, a user's own subclass) or by
registered name (``"fic"``: its defaults); ``routine_settings`` (name ->
{parameter: value}, what ``--set fic_eib.eta_eib=0.01`` on the command line
builds) changes parameters on top.  :func:`build_pipeline` turns that into
the pipeline the runner runs, in one place; provenance records each routine's
full settings (:func:`routine_record`).
"""

from __future__ import annotations

from typing import Sequence

from ..routines.registry import Routine, dependency_order, get_routine
from .._validation import InputError


def routine_name(spec: str | Routine) -> str:
    return spec if isinstance(spec, str) else spec.name


def trait_values(routine: Routine) -> dict:
    """A routine's parameters as set (not as reported: a schedule stays None if it was None)."""
    return {k: getattr(routine, k) for k in type(routine).declarative_attrs if k not in ("gid", "title")}


def build_pipeline(specs: Sequence[str | Routine], routine_settings: dict, seed: int) -> list[Routine]:
    """The routines to run, configured, in dependency order; the plan is checked.

    Each routine gets the experiment's ``seed`` (one seed per run: the stages fold it with their
    names) unless ``routine_settings`` give it one; a routine object whose own seed is neither 0
    (the default) nor ``seed`` is refused as ambiguous.
    """
    given: dict[str, Routine | None] = {}
    for s in specs:
        name = routine_name(s)
        if name in given:
            raise InputError(f"routine {name!r} is listed twice in the experiment's routines")
        given[name] = None if isinstance(s, str) else s
    order = dependency_order(list(specs))
    unknown = set(routine_settings) - set(order)
    if unknown:
        raise InputError(f"routine_settings for {sorted(unknown)}, which this run does not include "
                         f"(it runs {order})")
    routines = [_configured(given.get(name), name, routine_settings.get(name, {}), seed) for name in order]
    plan = {r.name: r for r in routines}
    for r in routines:
        r.check_plan(plan)
    return routines


def _configured(base: Routine | None, name: str, changes: dict, seed: int) -> Routine:
    values = {} if base is None else trait_values(base)
    if base is not None and "seed" not in changes and base.seed not in (0, seed):
        raise InputError(f"{type(base).__name__}(seed={base.seed}) in an experiment with seed {seed}: the routines "
                         f"of an experiment take its seed; set the experiment's seed (or routine_settings="
                         f"{{{name!r}: {{'seed': {base.seed}}}}} for this routine alone)")
    values.update(changes)
    values["seed"] = changes.get("seed", seed)
    cls = type(base) if base is not None else get_routine(name)
    try:
        return cls(**values)
    except InputError:
        raise
    except Exception as err:  # neotraits reports bad names and out-of-range values
        raise InputError(f"bad settings for routine {name!r} ({changes or values}): {err}") from None


def routine_record(routines: Sequence[Routine]) -> dict:
    """name -> the full settings of each configured routine (what provenance records)."""
    return {r.name: r.settings() for r in routines}
