"""The TVB boundary: every way in from TVB objects and back out to them, in one place.

Use it as ``import tvb_eib_plugin as eib`` then ``eib.tvb.<name>``.  The names come in
pairs: ``from_*`` / ``*_from_tvb`` build the plugin's objects from TVB's, ``to_*`` /
``*_to_tvb`` build TVB's objects from the plugin's.

==========================  ====================================  ====================================
TVB object                  into the plugin                       back to TVB
==========================  ====================================  ====================================
``Simulator``               ``from_simulator(sim, normalise=)``   ``to_simulator(model, labels, ...)``
                            -> NetworkModel                       -> a configured Simulator that runs
                                                                  the tuned J_i, wLRE, wFFI, delays
``Connectivity`` + model,   ``from_connectivity(conn, model,      ``to_connectivity(model, labels,
coupling, integrator,       normalise=, coupling=, integrator=,   tract_lengths=, speed=)``
monitor                     monitor=)`` -> NetworkModel           -> Connectivity of the model's weights
``Connectivity`` as data    ``connectome_from_tvb(conn, fc=)``    ``connectivity(source)``: from a
                            -> Connectome (SC, tract lengths)     Connectome, tvb-data name or zip
``initial_conditions``      ``history_from_tvb(model, ic)``       ``history_to_tvb(model, state)``
(T, 2, N, 1)                -> SimState                           -> (horizon, 2, N, 1)
model / coupling            (read by ``from_connectivity``)       ``model_to_tvb(model)``,
                                                                  ``coupling_to_tvb(model)``
integrator / monitor        ``integrator_from_tvb``,              (built by ``to_simulator``)
                            ``bold_from_tvb``
==========================  ====================================  ====================================

Everything here is a re-export of :mod:`tvb_eib_plugin.tvb._adapters` (into the plugin) and
:mod:`tvb_eib_plugin.tvb._export` (back to TVB), whose docstrings hold the details: the
delays are TVB's own ``rint(tract_lengths / speed / dt)`` both ways, a network with delays
exports only with the tract lengths and speed that give them, and any initial history passes
both ways.  Noise-free, TVB's Simulator and the plugin agree step for step.

This module does not shadow TVB's top-level ``tvb`` package: imports inside the plugin are
absolute (``from tvb.simulator import models``), so ``tvb`` always means TVB itself.  It is
not in the package's ``__all__``, so ``from tvb_eib_plugin import *`` does not rebind a
user's ``tvb``.
"""

from __future__ import annotations

from ._adapters import bold_from_tvb
from ._adapters import connectome_from_tvb
from ._adapters import heun_from_tvb as integrator_from_tvb
from ._adapters import initial_state_from_tvb as history_from_tvb
from ._adapters import network_from_simulator as from_simulator
from ._adapters import network_from_tvb as from_connectivity
from ._adapters import tvb_connectivity as connectivity
from ._export import tvb_connectivity_from as to_connectivity
from ._export import tvb_coupling as coupling_to_tvb
from ._export import tvb_initial_conditions as history_to_tvb
from ._export import tvb_model as model_to_tvb
from ._export import tvb_simulator as to_simulator

__all__ = [
    # whole networks
    "from_simulator", "to_simulator",
    "from_connectivity", "to_connectivity",
    # connectivity data
    "connectivity", "connectome_from_tvb",
    # initial histories
    "history_from_tvb", "history_to_tvb",
    # parts
    "model_to_tvb", "coupling_to_tvb", "integrator_from_tvb", "bold_from_tvb",
]
