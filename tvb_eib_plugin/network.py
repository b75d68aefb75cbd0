"""The whole network model as one pytree, and the state a simulation carries."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from .balloon import BalloonBold, BalloonState, balloon_bold
from .bold import BoldState, HRFBold, bold_init, hrf_bold
from .coupling import DualCoupling, dual_coupling
from .integrate import Integrator, IntegratorState, integrator, integrator_init
from .model import NodeParams, node_params
from .validation import InputError


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class NetworkModel:
    """Node parameters, dual coupling, integrator and BOLD settings.

    Everything a simulation needs and nothing else: the tunable parameters
    are ``node.J_i`` (N,), ``coupling.wLRE`` and ``coupling.wFFI`` (N, N).
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

    def with_tuned(self, J_i=None, wLRE=None, wFFI=None) -> "NetworkModel":
        """A copy with new values of the tuned parameters (None keeps the old)."""
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
        node_overrides: node parameters (see :data:`model.PARAMETERS`).
    """
    from .validation import check_weights

    weights = check_weights(weights, "weights")
    n = weights.shape[0]
    return NetworkModel(
        node=node_params(n, dtype=dtype, **node_overrides),
        coupling=dual_coupling(weights, wLRE, wFFI, delays_ms=delays_ms, dt=dt, dtype=dtype),
        integrator=integrator(scheme, dt, sigma_e, sigma_i, dtype=dtype),
        bold=_observation(bold, dt, tr_ms, bold_step_ms, dtype),
    )


def _observation(kind: str, dt: float, tr_ms: float, step_ms, dtype) -> HRFBold | BalloonBold:
    if kind == "hrf":
        if step_ms is not None:
            raise ValueError("bold_step_ms applies to the Balloon-Windkessel model (bold='balloon') only")
        return hrf_bold(dt=dt, period_ms=tr_ms, dtype=dtype)
    if kind == "balloon":
        return balloon_bold(dt=dt, period_ms=tr_ms, step_ms=step_ms, dtype=dtype)
    raise ValueError(f"bold must be 'hrf' or 'balloon', got {kind!r}")


def network_from_connectome(con, *, normalise: str = "max", delays: bool = True, **kwargs) -> NetworkModel:
    """A :class:`NetworkModel` from a :class:`data.Connectome`.

    Args:
        normalise: ``"max"`` (W / max W, the reference workflow) or ``"none"``.
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
