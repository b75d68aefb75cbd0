"""One driver for every iterative routine: a routine writes a pure pair, the driver does the rest.

A routine is written for one unbatched network, in the optax / equinox manner:

- ``init(start, target_fc)`` builds its carry (a pytree) from a one-network :class:`TuningState`, with
  array operations only: a batch maps it over its members with ``vmap`` (checks that need values go in
  the optional ``check_start(start)``, which sees the whole start, batched or not);
- ``chunk(config, carry, ks, params, target_fc)`` (a static method: a pure function) advances the
  carry by ``len(ks)`` iterations in one ``lax.scan`` and returns it with per-iteration records;
  ``config`` is hashable (it selects a compilation), ``params`` a pytree of arrays (a phase's
  hyperparameters, traced, so that a new phase does not compile again);
- ``phases(dtype)``: the :class:`Phase` s the iterations come in (one, or a schedule's stages);
- ``finish(carry, start)``: the :class:`TuningState` it hands on.

Two optional hooks: ``phase_start(carry, index)`` turns the carry a phase starts from (e.g. a restart of
the simulation at every schedule stage; default: unchanged), and ``in_loop(carry, target_fc)`` measures
the final carry (e.g. the fit of the routine's own FC window), kept in :attr:`StageResult.in_loop`.

:func:`drive` then runs any such routine: the ``vmap`` over the members of a batch (compiled once
per routine configuration and reused across runs), chunking with progress, NaN / saturation /
runaway checks, history thinning (``record_every``), and checkpoint and resume (``checkpoint``)
for every routine that declares those traits.  A new routine gets all of it by writing the four
methods; ``tests/test_driver.py`` has one in 20 lines.
"""

from __future__ import annotations

import functools
import os
from typing import Any, Callable, ClassVar, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from .._simulation.batch import map_members, member_groups
from .._simulation.divergence import SimulationDiverged, tuning_check
from .checkpoint import check_checkpoint, checkpoint_path, fingerprint, load_checkpoint, save_checkpoint
from .loop import CheckFn, run_chunks, stack_records
from .registry import Routine, StageResult, TuningState


class Phase(NamedTuple):
    """A stretch of a routine's iterations with its own hyperparameters (a schedule stage).

    ``params`` (a pytree of arrays) reaches every chunk of the phase; ``title`` is logged at its start.
    """

    iterations: int
    params: Any = None
    title: str | None = None


class IterativeRoutine(Routine):
    """Base of the routines :func:`drive` runs (see the module docstring for what a subclass writes)."""

    #: what one iteration is called in the progress rate ("it", "step")
    unit: ClassVar[str] = "it"
    history_dim: ClassVar[str] = "iteration"
    #: what to change when the routine diverges (the end of the error message)
    fix: ClassVar[str] = "check the starting parameters"

    def check_start(self, start: TuningState) -> None:
        """Refuse a start the routine cannot run from (one network or a batch), before any compute: the
        checks that need concrete values, since :meth:`init` is traced for a batch.  Default: none."""

    def init(self, start: TuningState, target_fc) -> Any:
        """The first carry, for one network; written with array operations only (a batch maps it over its
        members with ``jax.vmap``); checks that need values belong in :meth:`check_start`."""
        raise NotImplementedError

    def phases(self, dtype) -> Sequence[Phase]:
        return (Phase(self.n_iterations),)

    def simulated_ms(self, model) -> float:
        """One TR per iteration (routines that simulate otherwise say so)."""
        return sum(p.iterations for p in self.phases(model.dtype)) * model.bold.period_ms

    def config(self, model) -> tuple:
        """The settings that select a compilation (hashable), for ``model``; the default: none."""
        return ()

    @staticmethod
    def chunk(config, carry, ks: jax.Array, params, target_fc) -> tuple[Any, dict]:
        raise NotImplementedError

    def finish(self, carry, start: TuningState) -> TuningState:
        model, sim, window = carry
        return TuningState(model, sim, start.seeds, window=window)

    def phase_start(self, carry, index: int):
        """The carry phase ``index`` starts from, given the one the phase before left (one network, traceable).

        Called at the start of every phase, also the first and one a resumed run starts at its beginning;
        not when a run resumes inside a phase (its checkpoint holds the carry after this).
        """
        return carry

    def in_loop(self, carry, target_fc) -> dict | None:
        """Measures of the final carry of one network (name -> scalar), e.g. the fit of its FC window; None: none."""
        return None

    def progress_line(self, done: int, total: int, last: dict) -> str | None:
        """The line logged after each chunk (the driver adds the rate and ETA); ``last``: the last records."""
        return f"  {done}/{total}"

    def check(self, carry) -> CheckFn | None:
        """What makes a chunk's result meaningless, given the starting carry; the default: regions pinned at
        0 or 1 throughout a chunk's ``mean_S_e`` records (NaN / inf in any record is always checked)."""
        return tuning_check()

    def begin_log(self, start, phases: Sequence[Phase]) -> str | None:
        return None

    def end_log(self) -> str | None:
        return f"{self.name} complete!"

    def run(self, start: TuningState, target_fc, previous: dict | None = None, log=None) -> StageResult:
        return drive(self, start, target_fc, log or (lambda _: None))

    # checkpoints: a routine with a `checkpoint` trait (a file name) gets them
    def preflight(self, start: TuningState, target_fc) -> None:
        ckpt = _checkpoint(self, start, target_fc)
        if ckpt and os.path.exists(ckpt[0]):  # a corrupt or foreign file is refused before any compute
            check_checkpoint(ckpt[0], self.settings(), ckpt[1])


@functools.cache
def compiled_chunk(fn: Callable, batched: bool, groups: tuple | None = None) -> Callable:
    """``fn(config, carry, ks, params, target_fc)`` jitted (config static), mapped over members if ``batched``:
    the carry and the target FC carry the member axis first, records get it second.  ``groups``: from
    :func:`member_groups`, CPU members that run a few at a time rather than in one ``vmap``."""
    if not batched:
        return jax.jit(fn, static_argnums=0)

    def mapped(config, carry, ks, params, target_fc):
        return map_members(functools.partial(fn, config), (0, None, None, 0), groups)(carry, ks, params, target_fc)

    return jax.jit(mapped, static_argnums=0)


def drive(routine: IterativeRoutine, start: TuningState, target_fc, log: Callable[[str], None]) -> StageResult:
    """Run ``routine`` from ``start`` (one network or a batch) and return its :class:`StageResult`."""
    routine.check_plan({})
    # the routine's own noise: one key per member, as a member run alone with its seed would draw
    staged = TuningState(start.model, routine.stage_sim(start), start.seeds, start.inputs, start.window)
    target = None if target_fc is None else jnp.asarray(target_fc)
    routine.check_start(staged)
    if start.batched:  # init is written for one network: mapped over the members in one call, not one by one
        def one(model, sim, window, target_fc):
            return routine.init(TuningState(model, sim, None, start.inputs, window), target_fc)

        carry = jax.vmap(one)(staged.model, staged.sim, staged.window, target)
    else:
        carry = routine.init(staged, target)
    phases = list(routine.phases(start.model.dtype))
    line = routine.begin_log(start, phases)
    if line:
        log(line)
    fn = compiled_chunk(type(routine).chunk, start.batched,
                        member_groups(start.model.coupling, start.sim.integ) if start.batched else None)
    config = routine.config(start.model)
    ckpt = _checkpoint(routine, start, target_fc)
    position, parts = {"stage": 0, "done": 0}, []
    if ckpt and os.path.exists(ckpt[0]):
        carry, position, history = load_checkpoint(ckpt[0], carry, routine.settings(), ckpt[1])
        parts = [history] if history else []
        log(f"  resuming from {ckpt[0]}: stage {position['stage'] + 1}, {position['done']} iterations into it")
    seconds = 0.0
    for index in range(position["stage"], len(phases)):
        first = position["done"] if index == position["stage"] else 0
        if first == 0:
            carry = _phase_start(routine, carry, index, start.batched)
        carry, history, sec = _run_phase(routine, fn, config, carry, phases, index, first, target, parts, log, ckpt)
        parts.append(history)
        seconds += sec
    line = routine.end_log()
    if line:
        log(line)
    return StageResult(routine.name, routine.finish(carry, start), stack_records(parts), routine.settings(), seconds,
                       routine.history_dim, _in_loop(routine, carry, target, start.batched))


def _phase_start(routine: IterativeRoutine, carry, index: int, batched: bool):
    """``routine.phase_start`` on one network or on each member of a batch (skipped when it is the identity)."""
    if type(routine).phase_start is IterativeRoutine.phase_start:
        return carry
    fn = functools.partial(routine.phase_start, index=index)
    return jax.vmap(fn)(carry) if batched else fn(carry)


def _in_loop(routine: IterativeRoutine, carry, target, batched: bool) -> dict | None:
    """``routine.in_loop`` of the final carry as numpy ((B,) arrays for a batch); None without a target."""
    if target is None or type(routine).in_loop is IterativeRoutine.in_loop:
        return None
    out = jax.vmap(routine.in_loop)(carry, target) if batched else routine.in_loop(carry, target)
    return None if out is None else {k: np.asarray(v) for k, v in out.items()}


def _run_phase(routine, fn, config, carry, phases, index, first, target, parts, log, ckpt):
    phase = phases[index]
    offset = sum(p.iterations for p in phases[:index])
    if phase.title:
        log(phase.title)
    every = routine.log_every
    every_ckpt = -(-getattr(routine, "checkpoint_every", every) // every) * every

    def after(c, done, so_far):  # a checkpoint every `checkpoint_every` iterations and at the phase's end
        if done % every_ckpt == 0 or done == phase.iterations:
            at_end = done == phase.iterations
            save_checkpoint(ckpt[0], c, {"stage": index + at_end, "done": 0 if at_end else done},
                            stack_records(parts + [_shifted(so_far(), offset)]), routine.settings(), ckpt[1])

    def chunk(c, k0, n):
        return fn(config, c, k0 + jnp.arange(n, dtype=jnp.int32), phase.params, target)

    try:
        carry, history, seconds = run_chunks(
            chunk, carry, phase.iterations, every,
            lambda done, last: routine.progress_line(offset + done, offset + phase.iterations, last), log,
            first=first, thin=getattr(routine, "record_every", 1), after_chunk=after if ckpt else None,
            check=routine.check(carry), fix=routine.fix, unit=routine.unit,
            desc=routine.name if len(phases) == 1 else f"{routine.name} {index + 1}/{len(phases)}")
    except SimulationDiverged as err:  # the routine's history so far: earlier phases, then this one's
        err.partial = stack_records(parts + [_shifted(err.partial or {}, offset)])
        raise
    return carry, _shifted(history, offset), seconds


def _checkpoint(routine: Routine, start: TuningState, target_fc) -> tuple[str, dict] | None:
    """The checkpoint file (its real path) and the fingerprint of this run's inputs it is bound to."""
    if not getattr(routine, "checkpoint", None):
        return None
    seeds = start.seeds if start.batched else routine.seed
    return checkpoint_path(routine.checkpoint), fingerprint(start.model, target_fc, seeds, start.inputs)


def _shifted(history: dict, offset: int) -> dict:
    """Number a phase's records globally: a thinned history's ``iteration`` gets the phase's offset."""
    history = dict(history)
    if "iteration" in history:
        history["iteration"] = history["iteration"] + offset
    return history
