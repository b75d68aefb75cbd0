"""The pipeline of one experiment: the transient, an evaluation of the start, then each routine in
dependency order (each from the state the one before left) and a fresh evaluation of what it tuned.

``run_experiment`` (:mod:`.experiment`) and ``tune_cohort`` (a batch: ``seeds`` given) both run it; a stage
that diverges raises :class:`SimulationDiverged` carrying every finished stage and the failed one's history.
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import jax

from .._io.results import StageRecord
from .._model.network import NetworkModel, initial_state
from .._simulation.batch import member, stack_trees
from .._simulation.divergence import SimulationDiverged
from .._simulation.evaluation import evaluate
from .._simulation.simulate import simulate
from .._simulation.window import FCWindow, window_empty
from .._validation import InputError
from ..routines import TuningState
from ..routines.checkpoint import pipeline_inputs
from ..routines.fic import number
from ..routines.registry import stage_key, stage_keys
from .coupling_choice import choose_coupling
from .memory import check_memory, run_memory
from .report import banner


def run_stages(settings, net: NetworkModel, fc, routines: list, log,
               seeds: tuple[int, ...] | None = None, labels: Sequence[str] | None = None) -> list[StageRecord]:
    """The pipeline: transient, an evaluation of the starting point, then each routine and its evaluation.

    With ``seeds`` the network is a batch (:mod:`batch`), ``fc`` (B, N, N), and
    member b runs with noise seed ``seeds[b]``; the records then hold the batch.
    ``labels`` (the regions') are part of what a routine's checkpoints are bound to.
    """
    seed = settings.seed if seeds is None else seeds
    check_memory(run_memory(settings, net, routines))  # first: a run too big to hold warns even if refused
    check_lengths(settings, net)
    banner(log, "STEP 1: Running simulation...")
    log(f"  Simulation period: {settings.eval_ms} ms, dt: {net.dt} ms")
    log(f"  Transient period: {settings.transient_ms} ms")
    if seeds is None:
        start = initial_state(net, stage_key(seed, "transient"))
    else:
        keys = stage_keys(seeds, "transient")
        start = jax.vmap(initial_state)(net, keys)  # each member's own key; one call, not one per member
    inputs = [pipeline_inputs(net, labels, settings.transient_ms, [r.settings() for r in routines[:i]])
              for i in range(len(routines))]
    for routine, ins in zip(routines, inputs):  # before any compute: e.g. a corrupt or another run's checkpoint
        routine.preflight(TuningState(net, start, seeds, ins), fc)
    eval_key = stage_keys(seed, "evaluation")

    def assess(model, sim_state):
        return evaluate(model, sim_state, fc, eval_key, settings.eval_ms, settings.eval_discard)

    try:
        state = simulate(net, start, settings.transient_ms).state
        net, chosen = start_coupling(settings, net, state, fc, routines, seeds, log)
        stages = [StageRecord("integration", net, assess(net, state), settings=chosen)]
    except SimulationDiverged as err:
        raise stage_failed(err, [], StageRecord("integration", net, None), labels)
    log("  Simulation complete.")

    banner(log, "STEP 2: Running algorithms...")
    log(f"  Algorithms to run (dependency order): {[r.name for r in routines]}")
    current, done = TuningState(net, state, seeds, window=bold_window(routines, net, seeds)), {}
    for routine, ins in zip(routines, inputs):
        log(f"\n>>> Running algorithm: {routine.name} (seed={routine.seed if seeds is None else list(seeds)})")
        try:
            result = routine.run(dataclasses.replace(current, inputs=ins), fc, done, log)
        except SimulationDiverged as err:
            history = err.partial if isinstance(err.partial, dict) else None
            raise stage_failed(err, stages, StageRecord(routine.name, None, None, history, routine.settings(),
                                                        history_dim=getattr(routine, "history_dim", "iteration")),
                               labels)
        done[routine.name] = result
        current = result.state
        try:
            ev = assess(current.model, current.sim)
        except SimulationDiverged as err:  # the routine finished: its parameters and history are kept
            raise stage_failed(err, stages, StageRecord(routine.name, current.model, None, result.history,
                                                        result.settings, result.seconds, result.history_dim), labels)
        log(f"  evaluation ({settings.eval_ms / 1000:.0f} s, FC from BOLD[{settings.eval_discard}:]): "
            f"fc_corr={number(ev.fc_corr)}, fc_rmse={number(ev.fc_rmse)}")
        stages.append(StageRecord(routine.name, current.model, ev, result.history, result.settings, result.seconds,
                                  result.history_dim, in_loop=result.in_loop))
    return stages


def check_lengths(settings, net: NetworkModel) -> None:
    """The transient and the evaluations are long enough to mean something (before anything compiles)."""
    if settings.eval_discard < 0:
        raise InputError(f"eval_discard must be >= 0 (BOLD samples dropped from the start of each evaluation), "
                         f"got {settings.eval_discard}")
    n_eval = int(settings.eval_ms // settings.tr_ms)
    if n_eval - settings.eval_discard < 3:
        raise InputError(f"eval_ms={settings.eval_ms} gives {n_eval} BOLD samples of {settings.tr_ms} ms: too few "
                         f"after dropping eval_discard={settings.eval_discard}; lengthen eval_ms or lower eval_discard")
    if settings.transient_ms < net.bold.period_ms:
        raise InputError(f"transient_ms={settings.transient_ms:g} is shorter than one TR ({net.bold.period_ms:g} ms); "
                         "lengthen it (CLI --transient-ms)")


def start_coupling(settings, net: NetworkModel, state, fc, routines: list, seeds, log):
    """With ``coupling="auto"``: the network at the coupling chosen for ``fc`` from the transient's end ``state``
    (J_i from FIC there), and the choice for the integration stage's record; otherwise ``net`` as it is."""
    if settings.coupling != "auto":
        return net, None
    by_name = {r.name: r for r in routines}
    options = dict({"fic": by_name.get("fic"), "eib": by_name.get("fic_eib")}, **settings.coupling_sweep)
    if seeds is None:
        choice = choose_coupling(net, state, fc, seed=settings.seed, log=log, **options)
        log(f"  starting coupling chosen for the data: G = {choice.G:g}")
        return choice.apply(net), {"coupling_choice": choice.record()}
    # a batch: each member chooses as it would alone (its network, target FC and seed), one sweep after another
    choices = [choose_coupling(member(net, b), member(state, b), fc[b], seed=k, log=log, **options)
               for b, k in enumerate(seeds)]
    log(f"  starting couplings chosen for the data: G = {[c.G for c in choices]}")
    stacked = stack_trees([c.apply(member(net, b)) for b, c in enumerate(choices)])
    placed = jax.tree_util.tree_map(lambda new, old: jax.device_put(new, old.sharding), stacked, net)  # as sharded
    return placed, {"coupling_choice": [c.record() for c in choices]}


def bold_window(routines: list, net: NetworkModel, seeds) -> FCWindow | None:
    """The empty BOLD window the pipeline starts with, as long as its routines need (None: none does)."""
    capacity = max((r.window_capacity() for r in routines), default=0)
    if not capacity:
        return None
    empty = window_empty(capacity, net.n_regions)
    return empty if seeds is None else stack_trees([empty] * len(seeds))


def stage_failed(err: SimulationDiverged, finished: list[StageRecord], failed: StageRecord,
                 labels) -> SimulationDiverged:
    """``err`` naming the failed stage, carrying the finished stages and the failed one's record."""
    err.in_stage(failed.name, labels)
    err.stages = list(finished) + [dataclasses.replace(failed, status="failed", error=str(err))]
    return err
