"""Cohorts: many subjects and noise seeds tuned in one compiled, batched run.

``tune_cohort(experiment, subjects, seeds=...)`` runs an experiment's whole
pipeline (transient, routines, evaluations) for every (subject, seed) pair
at once: the subjects' networks are stacked into one batched model
(:mod:`batch`), every compiled chunk maps over the members, and the batch
is spread over all local JAX devices.  Member (s, k) computes what
``run_experiment(experiment, connectome=s, seed=k)`` computes alone.

Results keep the single-run DataTree layout with two more dimensions:
``subject`` (named by each connectome's ``name``) on every variable, and
``seed`` on everything that depends on the noise (all but the root's
``fc_target`` and ``weights``).
"""

from __future__ import annotations

import dataclasses
import os
from typing import Callable, Sequence

import jax.numpy as jnp
import numpy as np
import xarray as xr

from .._simulation.batch import local_devices, member, pad_members, padded_size, shard_members, stack_models
from .._io.data import Connectome, load_connectome
from .._simulation.divergence import SimulationDiverged
from .._simulation.evaluation import Evaluation
from ..routines.progress import log_info
from .._experiments.experiment import ExperimentSettings, configure_routines, get_experiment, prepare_inputs
from .._experiments.stages import run_stages
from .._experiments.report import failed_attrs, provenance, summarise
from .._io.results import StageRecord, _attr_value, build_results
from .._experiments.plan import dependency_order
from ..routines.checkpoint import batch_path
from .._validation import InputError
from .._experiments.cost import Stopwatch, run_cost

SEED_NOTE = "per member: see the `seed` coordinate"


def cohort_settings(experiment: str | ExperimentSettings, variant: str | None = None, **overrides) -> ExperimentSettings:
    """An experiment's settings (a name or settings), with a variant and overrides applied."""
    settings = experiment if isinstance(experiment, ExperimentSettings) else get_experiment(experiment)
    return settings.with_variant(variant).replace(**overrides)


def check_subjects(subjects: Sequence[Connectome | str]) -> list[Connectome]:
    """Load and check a cohort: unique names, one parcellation (same labels), a target FC each."""
    loaded = [s if isinstance(s, Connectome) else load_connectome(s) for s in subjects]
    if not loaded:
        raise InputError("a cohort needs at least one subject")
    names = [c.name for c in loaded]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise InputError(f"subject names must be unique (they label the results); repeated: {dupes}. "
                         "Give each Connectome its own name, e.g. dataclasses.replace(con, name='sub-01')")
    first = loaded[0]
    for c in loaded:
        if c.fc_target is None:
            raise InputError(f"subject {c.name!r} has no target FC; pass Connectome(..., fc_target=...)")
        if c.labels != first.labels:
            raise InputError(f"subject {c.name!r} has other regions than {first.name!r}: a batch shares one "
                             "parcellation (same labels, same order)")
    return loaded


def tune_cohort(
    experiment: str | ExperimentSettings = "EI_Tuning_FIC_EIB_Optimization",
    subjects: Sequence[Connectome | str] = (),
    *,
    seeds: Sequence[int] = (0,),
    devices: Sequence | None = None,
    log: Callable[[str], None] | None = log_info,
    variant: str | None = None,
    **overrides,
) -> xr.DataTree:
    """Tune every subject with every noise seed in one batched run; results stacked by subject and seed.

    Args:
        experiment: a name from :data:`experiment.EXPERIMENTS` or settings.
        subjects: connectomes of one parcellation, each with its target FC and a unique ``name``
            (or data set names / folders that load as such).
        seeds: noise seeds; each subject is tuned once per seed.
        devices: JAX devices to spread the members over (default: all local devices).
        log: where progress lines go (a batch's records print as mean [min..max]).
        variant, overrides: as :func:`experiment.run_experiment`.

    Returns a DataTree with the layout of :func:`experiment.run_experiment` and
    dims ``subject`` and ``seed`` added.
    """
    log = log or (lambda _: None)
    settings = cohort_settings(experiment, variant, **overrides)
    subjects = check_subjects(subjects)
    seeds = tuple(int(k) for k in seeds)
    if not seeds or len(set(seeds)) != len(seeds):
        raise InputError(f"seeds must be a non-empty list of distinct integers, got {list(seeds)}")
    settings = batch_checkpoints(settings, [c.name for c in subjects], seeds, log)
    routines = cohort_routines(settings)
    watch = Stopwatch()
    prepared = [prepare_inputs(settings, con, None, None, None) for con in subjects]
    pairs = [(s, k) for s in range(len(subjects)) for k in seeds]
    devices = list(devices or local_devices())
    size = padded_size(len(pairs), len(devices))
    net = shard_members(pad_members(stack_models([prepared[s][0] for s, _ in pairs]), size), devices)
    fc = shard_members(pad_members(jnp.asarray(np.stack([prepared[s][1] for s, _ in pairs]), net.dtype), size),
                       devices)
    member_seeds = tuple(k for _, k in pairs) + (pairs[-1][1],) * (size - len(pairs))
    log(f"Cohort: {len(subjects)} subject(s) x {len(seeds)} seed(s) = {len(pairs)} members in one batch"
        f"{f' (padded to {size})' if size > len(pairs) else ''} on {len(devices)} device(s)")
    cores = os.cpu_count() or 1
    if len(devices) == 1 and devices[0].platform == "cpu" and cores > 1 and len(pairs) > 1:
        log(f"  (one CPU device: tvb_eib_plugin.use_host_devices() before the first computation, or "
            f"XLA_FLAGS=--xla_force_host_platform_device_count={cores}, spreads the batch over {cores} cores)")
    order = [r.name for r in routines]

    def results(stages, err=None, cost=None):
        seconds = watch.seconds()[0] if cost is None else cost["wall_time_s"]
        trees = []
        for b, (s, k) in enumerate(pairs):
            _, fc_s, labels, source, weights = prepared[s]
            attrs = provenance(dataclasses.replace(settings, seed=k), source, order, seconds, cost=cost)
            trees.append(build_results(member_stages(stages, b), labels, fc_s, weights,
                                       attrs if err is None else failed_attrs(attrs, err)))
        tree = stack_results(trees, [c.name for c in subjects], seeds)
        attrs = cohort_attrs(settings, subjects, seeds, order, seconds, len(devices), cost)
        tree.attrs.update(attrs if err is None else failed_attrs(attrs, err))
        chosen = (stages[0].settings or {}).get("coupling_choice") if stages else None
        if chosen:  # coupling="auto": each member's G (its sweep is in the integration stage's settings)
            by_member = [(s, k, chosen[b]["coupling_chosen"]) for b, (s, k) in enumerate(pairs)]
            tree.attrs["coupling_chosen"] = _attr_value(
                {c.name: {str(k): G for s, k, G in by_member if s == i} for i, c in enumerate(subjects)})
        return tree

    try:
        stages = run_stages(settings, net, fc, routines, log, seeds=member_seeds, labels=prepared[0][2])
    except SimulationDiverged as err:  # every member's finished stages, and the failed one's partial history
        err.results = results(err.stages, err)
        raise
    # the whole batch's wall and CPU seconds; simulated hours per member (the batch simulates that much each)
    cost = run_cost(routines, net, settings.transient_ms, settings.eval_ms, watch,
                    (stages[0].settings or {}).get("coupling_choice"))
    summarise(stages, settings, "cohort", order, log, cost)
    return results(stages, cost=cost)


def batch_checkpoints(settings: ExperimentSettings, subjects: Sequence[str], seeds: Sequence[int],
                      log) -> ExperimentSettings:
    """The settings with each routine's checkpoint file named after this batch's members
    (:func:`routines.checkpoint.batch_path`): batches, on one machine or on Dask workers, never share a file."""
    named = {k: dict(v) for k, v in settings.routine_settings.items()}
    for routine in settings.pipeline():  # a routine object's own checkpoint file as much as a setting's
        if getattr(routine, "checkpoint", None):
            path = batch_path(routine.checkpoint, subjects, seeds)
            named.setdefault(routine.name, {})["checkpoint"] = path
            log(f"  {routine.name} checkpoint of this batch: {path}")
    return dataclasses.replace(settings, routine_settings=named)


def cohort_routines(settings: ExperimentSettings) -> list:
    """The configured routines of a cohort run; refuses a plan that cannot run batched."""
    routines = configure_routines(settings)
    unbatchable = [r.name for r in routines if not r.batchable]
    if unbatchable:
        raise InputError(f"routine(s) {unbatchable} run one network at a time; tune those subjects with "
                         "run_experiment")
    return routines


def member_stages(stages: list[StageRecord], b: int) -> list[StageRecord]:
    """Member ``b``'s stage records of a batched run."""
    out = []
    for st in stages:
        history = None if st.history is None else {k: (v[:, b] if np.ndim(v) >= 2 else v)
                                                   for k, v in st.history.items()}
        settings = None if st.settings is None else dict(st.settings, seed=SEED_NOTE)
        ev: Evaluation | None = st.evaluation
        out.append(dataclasses.replace(st, model=None if st.model is None else member(st.model, b),
                                       evaluation=None if ev is None else ev.member(b), history=history,
                                       settings=settings, in_loop=_member_values(st.in_loop, b)))
    return out


def _member_values(values: dict | None, b: int) -> dict | None:
    """Member ``b``'s entry of each (B,) value (a routine's in-loop measures)."""
    return None if values is None else {k: v[b] for k, v in values.items()}


def stack_results(trees: Sequence[xr.DataTree], subjects: Sequence[str], seeds: Sequence[int]) -> xr.DataTree:
    """Stack single-run trees (subject-major: all seeds of subject 0, then subject 1, ...) into one
    tree with ``subject`` and ``seed`` dims; the root's fc_target and weights get ``subject`` only."""
    n_seeds = len(seeds)
    if len(trees) != len(subjects) * n_seeds:
        raise ValueError(f"{len(trees)} trees for {len(subjects)} subjects x {n_seeds} seeds")
    by_subject = [trees[i * n_seeds:(i + 1) * n_seeds] for i in range(len(subjects))]
    nodes = {}
    for node in trees[0].subtree:
        path = node.path
        if path == "/":
            parts = [group[0][path].to_dataset(inherit=False) for group in by_subject]
        else:
            parts = [_concat([t[path].to_dataset(inherit=False) for t in group], _index("seed", seeds))
                     for group in by_subject]
        nodes[path] = _concat(parts, _index("subject", [str(s) for s in subjects]))
    return _label(xr.DataTree.from_dict(nodes))


def concat_subjects(trees: Sequence[xr.DataTree]) -> xr.DataTree:
    """Join cohort trees of disjoint subjects (e.g. batches run on different workers) along ``subject``."""
    nodes = {}
    for node in trees[0].subtree:
        nodes[node.path] = _concat([t[node.path].to_dataset(inherit=False) for t in trees], "subject")
    tree = xr.DataTree.from_dict(nodes)
    # one batch's seconds are not the whole cohort's (simulated hours are per member: the same in every batch)
    tree.attrs.update({k: v for k, v in trees[0].attrs.items() if k not in ("subjects", "wall_time_s", "cpu_time_s")})
    tree.attrs["subjects"] = _attr_value([str(s) for s in tree["subject"].values])
    return _label(tree)


def _index(name: str, values) -> xr.DataArray:
    return xr.DataArray(np.asarray(values), dims=name, name=name)


def _concat(parts: list[xr.Dataset], dim) -> xr.Dataset:
    return xr.concat(parts, dim=dim, data_vars="all", coords="minimal", compat="override",
                     combine_attrs="drop_conflicts")


def _label(tree: xr.DataTree) -> xr.DataTree:
    """CF attributes on the member coordinates (labels: a long_name, no units; see results.VARIABLES)."""
    from .._io.results import VARIABLES

    for node in tree.subtree:
        for name in ("subject", "seed"):
            if name in node.dataset.coords and not node[name].attrs:
                _, long_name, description = VARIABLES[name]
                node[name].attrs.update(long_name=long_name, description=description)
    return tree


def cohort_attrs(settings: ExperimentSettings, subjects: Sequence[Connectome], seeds, order, seconds: float,
                 devices: int, cost: dict | None = None) -> dict:
    """Root attrs of a cohort: the shared settings (seed per member), the subjects, the batch and its cost
    (``cost``: :func:`cost.run_cost` of the whole batch, absent from a run that failed)."""
    attrs = provenance(settings, "cohort", order, seconds, cost=cost)
    s = dict(settings=settings.record())
    s["settings"]["seed"] = SEED_NOTE
    for values in s["settings"]["routine_settings"].values():
        values["seed"] = SEED_NOTE
    attrs.update(s, data_source=[c.name for c in subjects], subjects=[c.name for c in subjects],
                 seeds=list(seeds), devices=devices, routines=list(dependency_order(list(order))))
    return {k: _attr_value(v) for k, v in attrs.items()}
