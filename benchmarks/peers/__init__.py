"""Timing functions for the *peers* of tvb-eib-plugin (not for the plugin).

Peers:

* TVB's own simulator (``tvb.simulator.simulator.Simulator``) with
  ``ReducedWongWangExcInh``;
* tvboptim 0.4 (``tvboptim.experimental.network_dynamics``), built the way its
  "Excitation-Inhibition Balance Tuning" tutorial (docs/workflows/EI_Tuning.qmd)
  builds the two-population reduced Wong-Wang network.

Every public ``time_*`` function returns a plain ``dict`` of numbers and short
strings (seconds, microseconds per integration step or milliseconds per
iteration, n_regions, n_steps, precision, how it was run).  Timings are taken
after compilation / warm-up, in float64.  See ``benchmarks/README_peers.md``
for how each peer is constructed and where it deviates from our model.

tvb and tvboptim are imported lazily: importing this module never needs them.
A missing peer raises ``PeerUnavailable`` (a subclass of ``ImportError``) from
the function that needs it.

``python -m peers`` (in benchmarks/) runs every function once with its defaults
and prints the dicts (a few minutes on 2 CPU cores).

One module per peer, each peer's construction in one place: ``tvb`` (TVB's
Simulator), ``tvboptim`` (its network, as the EI tutorial builds it) with the
timings that use it (``tvboptim_simulation``, ``tvboptim_tuning``,
``tvboptim_gradient``); ``common`` holds what all share (model parameters,
the dk_average data), ``isolated`` the fresh-process runner.
"""


from .common import (G, INITIAL_STATE, MODEL_PARAMS, NSIG, SIGMA, TR_MS, PeerUnavailable,  # noqa: F401
                     load_dk_average)
from .isolated import run_isolated
from .tvb import time_tvb_simulator
from .tvboptim_gradient import _gradient_worker, time_tvboptim_gradient  # noqa: F401
from .tvboptim_simulation import time_tvboptim_simulation
from .tvboptim_tuning import time_tvboptim_tuning_loop


__all__ = [
    "PeerUnavailable",
    "MODEL_PARAMS",
    "load_dk_average",
    "time_tvb_simulator",
    "time_tvboptim_simulation",
    "time_tvboptim_tuning_loop",
    "time_tvboptim_gradient",
    "run_isolated",
]
