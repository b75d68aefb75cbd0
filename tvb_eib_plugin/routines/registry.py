"""Tuning routines: declared like TVB's integrators and monitors, looked up by name.

A routine is a :class:`Routine` subclass (TVB ``HasTraits``) whose
hyperparameters are traits with a default, bounds and a doc; it names the
routines it depends on, and ``run`` turns a starting :class:`TuningState` into
a :class:`StageResult`.  ``@register`` adds it to the registry so that the
runner can order routines by dependency and users can add their own.
"""

from __future__ import annotations

import dataclasses
import functools
import zlib
from typing import Any, Callable, ClassVar

import jax
import jax.numpy as jnp
import numpy as np
from tvb.basic.neotraits.api import Float, HasTraits, Int
from tvb.basic.neotraits.ex import TraitValueError

from .._model.network import NetworkModel, SimState
from .._validation import InputError


class _Bounded:
    """Mixin for neotraits numbers: refuse values outside [lo, hi] when set."""

    lo: float
    hi: float

    def _validate_set(self, instance, value):
        value = super()._validate_set(instance, value)
        if not self.lo <= value <= self.hi:
            raise TraitValueError(f"must be within [{self.lo:g}, {self.hi:g}], got {value:g}", attr=self)
        return value


class BoundedFloat(_Bounded, Float):
    """A neotraits ``Float`` with bounds [lo, hi]."""

    def __init__(self, default, lo, hi, doc="", label=""):
        super().__init__(default=float(default), doc=doc, label=label)
        self.lo, self.hi = float(lo), float(hi)


class BoundedInt(_Bounded, Int):
    """A neotraits ``Int`` with bounds [lo, hi]."""

    def __init__(self, default, lo, hi, doc="", label=""):
        super().__init__(default=int(default), doc=doc, label=label)
        self.lo, self.hi = int(lo), int(hi)


@dataclasses.dataclass
class TuningState:
    """Where a routine starts and what it hands on: the model (tuned parameters
    included) and the simulation state (gating, history, BOLD buffer, noise key).

    A batch (see :mod:`~tvb_eib_plugin._simulation.batch`) carries a leading member axis on
    every array and ``seeds``, the noise seed of each member: member b's
    stages draw the noise a single run with ``seed=seeds[b]`` would.

    ``inputs``: what the pipeline was built from beyond the model (region
    labels, the transient, the routines before; set by the runner, see
    :func:`~tvb_eib_plugin.routines.checkpoint.pipeline_inputs`); a routine's
    checkpoints are bound to them.

    ``window``: the most recent BOLD samples (a :class:`~tvb_eib_plugin._simulation.window.FCWindow`),
    pushed by every routine that simulates TR by TR, so that EIB tuning starts
    from the FC of the samples FIC left (None: no routine kept any).
    """

    model: NetworkModel
    sim: SimState
    seeds: tuple[int, ...] | None = None
    inputs: dict | None = None
    window: Any = None

    @property
    def batched(self) -> bool:
        return self.seeds is not None

    def with_bold(self, samples) -> "TuningState":
        """This state with a window holding BOLD ``samples`` ((T, N), or (T, B, N) for a batch; oldest first;
        e.g. a :class:`~tvb_eib_plugin._simulation.simulate.Simulation`'s ``bold``): a start for EIB tuning without FIC."""
        from .._simulation.window import window_init

        samples = np.asarray(samples)
        if samples.ndim != (3 if self.batched else 2):
            raise InputError(f"with_bold takes BOLD samples (T, N), or (T, B, N) for a batch; got {samples.shape}")
        if not self.batched:
            return dataclasses.replace(self, window=window_init(samples, len(samples), len(samples)))
        one = functools.partial(window_init, capacity=len(samples), length=len(samples))
        return dataclasses.replace(self, window=jax.vmap(one, in_axes=1)(samples))


@dataclasses.dataclass
class StageResult:
    """What a routine returns.

    Attributes:
        name: the routine's name.
        state: the final tuning state.
        history: per-iteration records, numpy arrays with a leading iteration axis.
        settings: the hyperparameters used.
        seconds: wall time of the routine, compilation included.
        history_dim: name of the history's leading axis ("iteration", or "step" for optimizers).
        in_loop: measures of the routine's final state (name -> value; (B,) for a batch), e.g. the fit of
            its last in-loop FC window (``fc_corr``, ``fc_rmse``); None: the routine has none.
    """

    name: str
    state: TuningState
    history: dict[str, np.ndarray]
    settings: dict
    seconds: float = 0.0
    history_dim: str = "iteration"
    in_loop: dict | None = None


Log = Callable[[str], None]


class Routine(HasTraits):
    """Base class of tuning routines; subclasses set ``name`` and may set ``depends_on``."""

    name: ClassVar[str] = ""
    depends_on: ClassVar[tuple[str, ...]] = ()
    summary: ClassVar[str] = ""
    #: whether ``run`` accepts a batched :class:`TuningState` (many subjects / seeds at once)
    batchable: ClassVar[bool] = True

    def check_plan(self, plan: dict[str, "Routine"]) -> None:
        """Refuse a plan (name -> configured routine, in run order) that cannot work,
        before anything runs; raise :class:`InputError` naming the fix."""

    def preflight(self, start: TuningState, target_fc) -> None:
        """Refuse, before any compute, what this routine can already tell is wrong with the run's inputs
        (e.g. a checkpoint file that is corrupt or another run's); ``start`` is the pipeline's initial state."""

    seed = BoundedInt(0, 0, 2**31 - 1, doc="noise seed of this routine's simulation")

    def window_capacity(self) -> int:
        """BOLD samples this routine needs in the window it starts from (or keeps for the next); 0: none."""
        return 0

    def simulated_ms(self, model: NetworkModel) -> float:
        """Simulated time (ms) this routine runs for one network of ``model``'s kind (its cost)."""
        return 0.0

    def settings(self) -> dict:
        """The hyperparameters as a plain dict."""
        return {k: getattr(self, k) for k in type(self).declarative_attrs if k not in ("gid", "title")}

    def run(self, start: TuningState, target_fc: np.ndarray, previous: dict[str, StageResult], log: Log) -> StageResult:
        raise NotImplementedError

    def stage_sim(self, start: TuningState) -> SimState:
        """The starting simulation state with this routine's own noise key (one per member of a batch)."""
        return start.sim.with_key(stage_keys(start.seeds if start.batched else self.seed, self.name))


def stage_key(seed: int, name: str) -> jax.Array:
    """The noise key of a stage: its seed, folded with its name so stages differ."""
    return jax.random.fold_in(jax.random.key(seed), zlib.crc32(name.encode()) & 0x7FFFFFFF)


def stage_keys(seeds: int | tuple[int, ...], name: str) -> jax.Array:
    """:func:`stage_key` of one seed, or stacked (B,) for a batch's seeds."""
    if isinstance(seeds, (int, np.integer)):
        return stage_key(int(seeds), name)
    return jnp.stack([stage_key(int(s), name) for s in seeds])


_REGISTRY: dict[str, type[Routine]] = {}


def register(cls: type[Routine]) -> type[Routine]:
    """Class decorator: make a routine available by its ``name``."""
    if not cls.name:
        raise ValueError(f"{cls.__name__} needs a non-empty class attribute `name`")
    _REGISTRY[cls.name] = cls
    return cls


def get_routine(name: str) -> type[Routine]:
    if name not in _REGISTRY:
        raise InputError(f"no tuning routine {name!r}; registered: {sorted(_REGISTRY)}")
    return _REGISTRY[name]


def registered_routines() -> dict[str, type[Routine]]:
    """Name -> class of every registered routine."""
    return dict(_REGISTRY)


def dependency_order(specs) -> list[str]:
    """The names of ``specs`` (routine names or routine objects) plus their dependencies, each after
    what it depends on; a routine object's class answers for its own dependencies (it need not be
    registered)."""
    classes = {s.name: type(s) for s in specs if not isinstance(s, str)}
    order: list[str] = []

    def visit(name: str, path: tuple[str, ...]):
        if name in path:
            raise InputError(f"dependency cycle: {' -> '.join(path + (name,))}")
        if name in order:
            return
        for dep in (classes.get(name) or get_routine(name)).depends_on:
            visit(dep, path + (name,))
        order.append(name)

    for s in specs:
        visit(s if isinstance(s, str) else s.name, ())
    return order
