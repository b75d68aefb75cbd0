"""The whole network model as one pytree, and the state a simulation carries."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from .._x64 import ensure_x64
from .balloon import BalloonBold, BalloonState, balloon_bold
from .bold import BoldState, HRFBold, bold_init, hrf_bold
from .coupling import DualCoupling, dual_coupling
from .integrate import Integrator, IntegratorState, integrator, integrator_init
from .node import NodeParams, node_params
from .._validation import InputError


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class TunedParams:
    """The parameters that tuning fits, as one pytree: what FIC, EIB and gradient fitting update, what
    twins draw as their truth and what results save (``NetworkModel.tuned`` / ``with_tuned``).

    Attributes:
        J_i: (N,) local inhibition (nA), FIC's parameter.
        wLRE: (N, N) long-range excitation, ``wLRE[i, j]`` scales the input from j to i's excitatory pool.
        wFFI: (N, N) feedforward inhibition, the same input into i's inhibitory pool.
    """

    J_i: jax.Array
    wLRE: jax.Array
    wFFI: jax.Array


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class NetworkModel:
    """Node parameters, dual coupling, integrator and BOLD settings.

    Everything a simulation needs and nothing else: the tuned parameters
    (:class:`TunedParams`, ``model.tuned``) are ``node.J_i`` (N,), ``coupling.wLRE``
    and ``coupling.wFFI`` (N, N).
    """

    node: NodeParams
    coupling: DualCoupling
    integrator: Integrator
    bold: HRFBold | BalloonBold

    def replace(self, **changes) -> "NetworkModel":
        return dataclasses.replace(self, **changes)

    @property
    def n_regions(self) -> int:
        return self.coupling.n_regions

    @property
    def dtype(self):
        return self.coupling.weights.dtype

    @property
    def dt(self) -> float:
        return self.integrator.dt

    @property
    def tuned(self) -> TunedParams:
        """The tuned parameters (J_i, wLRE, wFFI) as one pytree."""
        return TunedParams(self.node.J_i, self.coupling.wLRE, self.coupling.wFFI)

    def with_tuned(self, params: TunedParams | None = None, *, J_i=None, wLRE=None, wFFI=None) -> "NetworkModel":
        """A copy with new values of the tuned parameters: all of them from ``params``, or some by name
        (None keeps the old)."""
        if params is not None:
            if not (J_i is None and wLRE is None and wFFI is None):
                raise InputError("with_tuned: give TunedParams or J_i / wLRE / wFFI by name, not both")
            J_i, wLRE, wFFI = params.J_i, params.wLRE, params.wFFI
        # no broadcasting: a scalar or another network's matrix would run as a different model (or a batch)
        for name, new, old in (("J_i", J_i, self.node.J_i), ("wLRE", wLRE, self.coupling.wLRE),
                               ("wFFI", wFFI, self.coupling.wFFI)):
            if new is not None and np.shape(new) != old.shape:
                raise InputError(f"with_tuned: {name} must have this network's shape {tuple(old.shape)}, got "
                                 f"{tuple(np.shape(new))} (J_i: one value per region; wLRE / wFFI: (N, N))")
        node = self.node if J_i is None else self.node.replace(J_i=jnp.asarray(J_i, self.dtype))
        coupling = self.coupling
        if wLRE is not None:
            coupling = coupling.replace(wLRE=jnp.asarray(wLRE, self.dtype))
        if wFFI is not None:
            coupling = coupling.replace(wFFI=jnp.asarray(wFFI, self.dtype))
        return self.replace(node=node, coupling=coupling)


def network_model(
    weights,
    *,
    delays_ms=None,
    dt: float = 4.0,
    sigma_e: float = 0.01,
    sigma_i: float = 0.0,
    tr_ms: float = 720.0,
    wLRE=1.0,
    wFFI=1.0,
    scheme: str = "heun",
    bold: str = "hrf",
    bold_step_ms: float | None = None,
    bold_order: str = "simultaneous",
    delay_convention: str = "tvb",
    dtype=jnp.float64,
    **node_overrides,
) -> NetworkModel:
    """A :class:`NetworkModel` from plain arrays, with the reference defaults.

    Args:
        weights: (N, N) normalised SC weights, ``weights[i, j]`` from j to i.
        delays_ms: optional (N, N) conduction delays in ms.
        dt: integration step, ms.  sigma_e, sigma_i: noise std per sqrt(ms).
        tr_ms: BOLD repetition time, ms.
        wLRE, wFFI: scalar (a global coupling) or (N, N) starting couplings.
        scheme: ``"heun"`` (TVB's) or ``"euler"`` (Euler-Maruyama).
        bold: ``"hrf"`` (TVB's Volterra kernel) or ``"balloon"`` (Balloon-Windkessel ODE,
            Euler steps of ``bold_step_ms``, default ``dt``).
        bold_order: the Balloon-Windkessel Euler step, ``"simultaneous"`` or ``"sequential"``
            (Schirner et al.'s released code; see :func:`balloon.balloon_bold`).
        delay_convention: how delays in ms become steps, see :func:`delay_steps`.
        node_overrides: node parameters (see :data:`model.PARAMETERS`).
    """
    ensure_x64()
    from .._validation import check_delays, check_weights

    weights = check_weights(weights, "weights")
    n = weights.shape[0]
    if delay_convention not in DELAY_CONVENTIONS:
        raise InputError(f"delay_convention must be one of {DELAY_CONVENTIONS}, got {delay_convention!r}")
    if delays_ms is not None:
        delays_ms = check_delays(delays_ms, n)
    if delays_ms is not None and delay_convention != "tvb":  # TVB's rounding stays dual_coupling's own
        delays_ms = delay_steps(delays_ms, dt, delay_convention) * dt  # whole steps, kept by its rounding
    return NetworkModel(
        node=node_params(n, dtype=dtype, **node_overrides),
        coupling=dual_coupling(weights, wLRE, wFFI, delays_ms=delays_ms, dt=dt, dtype=dtype),
        integrator=integrator(scheme, dt, sigma_e, sigma_i, dtype=dtype),
        bold=_observation(bold, dt, tr_ms, bold_step_ms, bold_order, dtype),
    )


#: ``"tvb"``: round(d / dt) steps, the state that many steps old (TVB's history).
#: ``"schirner2023_c"``: Schirner et al.'s released C program (its ring buffer, dt = 1 ms).
DELAY_CONVENTIONS = ("tvb", "schirner2023_c")


def delay_steps(delays_ms, dt: float, convention: str = "tvb") -> np.ndarray:
    """Conduction delays (N, N) in ms as the whole steps of the past the coupling reads.

    ``"tvb"``: round(d / dt) (half to even), the state that many steps old.
    ``"schirner2023_c"``: the released C program rounds half up, floors the
    result at one step, and its ring buffer then hands over the state one step
    younger than that: max(floor(d / dt + 1/2), 1) - 1, so an edge shorter
    than 1.5 steps reads the current state and every longer one the state a
    step younger than TVB would (the program assumes dt = 1 ms: d / dt there).
    """
    d = np.asarray(delays_ms, dtype=np.float64) / dt
    if convention == "tvb":
        return np.rint(d)
    if convention == "schirner2023_c":
        return np.maximum(np.floor(d + 0.5), 1.0) - 1.0
    raise InputError(f"delay_convention must be one of {DELAY_CONVENTIONS}, got {convention!r}")


def _observation(kind: str, dt: float, tr_ms: float, step_ms, order: str, dtype) -> HRFBold | BalloonBold:
    if kind == "hrf":
        if step_ms is not None or order != "simultaneous":
            raise ValueError("bold_step_ms and bold_order apply to the Balloon-Windkessel model (bold='balloon') only")
        return hrf_bold(dt=dt, period_ms=tr_ms, dtype=dtype)
    if kind == "balloon":
        return balloon_bold(dt=dt, period_ms=tr_ms, step_ms=step_ms, order=order, dtype=dtype)
    raise ValueError(f"bold must be 'hrf' or 'balloon', got {kind!r}")


def network_from_connectome(con, *, normalise: str = "max", delays: bool = True, **kwargs) -> NetworkModel:
    """A :class:`NetworkModel` from a :class:`data.Connectome`.

    Args:
        normalise: ``"max"`` (W / max W, the reference workflow), ``"sqrt_max10"`` (the
            paper's preprocessing, :func:`data.normalise_weights`) or ``"none"``.
        delays: conduction delays from tract lengths / speed (the reference
            workflow runs without: ``delays=False``).
        kwargs: as :func:`network_model` (dt, sigma_e, tr_ms, dtype, node parameters).

    Raises:
        InputError: ``delays=True`` on a connectome without tract lengths (a model silently
            without the delays asked for would be a wrong answer).
    """
    if delays and con.tract_lengths is None:
        raise InputError(f"{con.name} has no tract lengths, so it has no conduction delays to give: pass tract "
                         "lengths (Connectome(tract_lengths=...), a BIDS *_meas-tractLength_relmat.dense.tsv) "
                         "or build the network with delays=False")
    delays_ms = con.delays_ms() if delays else None
    return network_model(con.normalised_weights(normalise), delays_ms=delays_ms, **kwargs)


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class SimState:
    """What carries over from one stretch of simulation to the next."""

    integ: IntegratorState
    bold: BoldState | BalloonState
    key: jax.Array

    @property
    def S(self) -> jax.Array:
        """(2, N) current (S_e, S_i)."""
        return self.integ.S

    def with_key(self, key: jax.Array) -> "SimState":
        """The same state with another noise key."""
        return dataclasses.replace(self, key=key)


def initial_state(model: NetworkModel, seed: int | jax.Array = 0, S0=0.001) -> SimState:
    """Constant initial history at ``S0`` (scalar, or (2, N)) and a noise key from ``seed``."""
    n = model.n_regions
    S0 = jnp.broadcast_to(jnp.asarray(S0, model.dtype), (2, n))
    key = jax.random.key(seed) if isinstance(seed, int) else seed
    return SimState(
        integ=integrator_init(S0, model.coupling.horizon),
        bold=bold_init(model.bold, S0[0]),
        key=key,
    )
