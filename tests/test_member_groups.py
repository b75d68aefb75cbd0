"""Large CPU batches run in cache-sized groups of members (``_simulation.batch.member_groups``): the
same simulation and routines (FIC+EIB, the gradient), the same results as one vmap to float rounding,
on one device and with the members sharded over two host devices."""

import json
import os
import subprocess
import sys

import jax.numpy as jnp
import numpy as np

import tvb_eib_plugin as eib
import tvb_eib_plugin._simulation.batch as batch
from tvb_eib_plugin._simulation.batch import member_groups, stack_models, stack_trees

SCRIPT = r"""
import json, sys
import numpy as np, jax, jax.numpy as jnp
import tvb_eib_plugin as eib
import tvb_eib_plugin._simulation.batch as batch
from tvb_eib_plugin._simulation.batch import member, member_groups, shard_members, stack_models, stack_trees
from tvb_eib_plugin.routines import FICEIB, GradientEIB, TuningState

def nets(b, n=7):
    rng = np.random.default_rng(11)
    out = []
    for k in range(b):
        w = rng.uniform(0, 1, (n, n)) * (1 - np.eye(n))
        d = rng.uniform(2, 12, (n, n))
        out.append(eib.network_model(w / w.max(), delays_ms=(d + d.T) / 2, dt=1.0, scheme="euler", bold="balloon",
                                     wLRE=1.0 + 0.1 * k, dtype=jnp.float64))
    return out

traced = []  # the simulation's mapping in groups, each time it is traced
grouped = batch.map_in_groups
batch.map_in_groups = lambda *a: traced.append(a[1]) or grouped(*a)

def run(members, limit):
    batch.CPU_GROUP_BYTES = limit
    model = stack_models(members)  # delay horizons unified to the longest
    state = shard_members(stack_trees([eib.initial_state(member(model, b), 3 + b) for b in range(len(members))]))
    model = shard_members(model)
    sim = eib.simulate(model, state, 12 * members[0].bold.period_ms)
    start = TuningState(model, sim.state, tuple(range(len(members)))).with_bold(sim.bold)
    rng = np.random.default_rng(2)
    fc = np.stack([np.corrcoef(rng.normal(size=(7, 40))) * (1 - np.eye(7)) for _ in members])
    groups = member_groups(start.model.coupling, start.sim.integ)
    res = FICEIB(n_iterations=12, window=10, log_every=6).run(start, fc)
    return groups, res, np.asarray(sim.bold)

members = nets(int(sys.argv[1]))
(g1, vm, b1) = run(members, 1e18)   # one vmap
sim_traced_vmap = len(traced)
(g2, gr, b2) = run(members, 1)      # groups of one member
# the gradient (two noise samples: a sum over them started from a constant) on the reference model
refs = [eib.network_model(m.coupling.weights, dtype=jnp.float64) for m in members]
fcg = np.stack([np.corrcoef(np.random.default_rng(b).normal(size=(7, 40))) * (1 - np.eye(7)) for b in range(len(refs))])
grads = []
for limit in (1e18, 1):
    batch.CPU_GROUP_BYTES = limit
    model = shard_members(stack_models(refs))
    state = shard_members(stack_trees([eib.initial_state(m, b) for b, m in enumerate(refs)]))
    r = GradientEIB(n_steps=2, duration_ms=16 * refs[0].bold.period_ms, discard=2).run(
        TuningState(model, state, tuple(range(len(refs)))), shard_members(jnp.asarray(fcg)))
    grads.append((np.asarray(r.state.model.coupling.wLRE), r.history["loss"]))
# a batch on a mesh the package did not make keeps one vmap (its axis is not "member")
foreign = jax.device_put(stack_models(refs), jax.sharding.NamedSharding(
    jax.sharding.Mesh(np.asarray(jax.devices()), ("b",)), jax.sharding.PartitionSpec("b")))
foreign_groups = member_groups(foreign.coupling)
print(json.dumps(dict(devices=len(jax.devices()),
                      gradient_wLRE=float(np.max(np.abs(grads[0][0] - grads[1][0]))),
                      gradient_loss=float(np.max(np.abs(grads[0][1] - grads[1][1]))),
                      foreign_mesh_groups=foreign_groups is not None, vmap_groups=g1 is not None, groups=None if g2 is None else g2[0],
                      mesh=None if g2 is None or g2[1] is None else g2[1].size,
                      wLRE=float(np.max(np.abs(np.asarray(vm.state.model.coupling.wLRE) - np.asarray(gr.state.model.coupling.wLRE)))),
                      fc_corr=float(np.max(np.abs(vm.history["fc_corr"] - gr.history["fc_corr"]))),
                      bold=float(np.max(np.abs(b1 - b2))), bold_shape=list(b2.shape),
                      simulation_groups=[sim_traced_vmap, traced],
                      shape=list(gr.history["fc_corr"].shape))))
"""


def _run(devices: int, members: int) -> dict:
    env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}", JAX_PLATFORMS="cpu")
    out = subprocess.run([sys.executable, "-c", SCRIPT, str(members)], env=env, capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_members_in_groups_compute_what_one_vmap_computes_on_one_device():
    got = _run(1, 3)
    assert got["devices"] == 1 and not got["vmap_groups"] and got["groups"] == 1 and got["mesh"] is None
    assert got["simulation_groups"][0] == 0 and got["simulation_groups"][1][:1] == [1]  # the transient too
    assert got["shape"] == [12, 3] and got["bold_shape"] == [12, 3, 7]  # records keep (iteration, member)
    assert got["gradient_wLRE"] < 1e-12 and got["gradient_loss"] < 1e-12
    assert got["wLRE"] < 1e-12 and got["fc_corr"] < 1e-12 and got["bold"] < 1e-12  # float64: rounding only


def test_members_in_groups_on_each_of_two_host_devices_compute_what_one_vmap_computes():
    got = _run(2, 4)
    assert got["devices"] == 2 and got["groups"] == 1 and got["mesh"] == 2
    assert got["simulation_groups"][0] == 0 and got["simulation_groups"][1][:1] == [1]
    assert got["shape"] == [12, 4] and got["bold_shape"] == [12, 4, 7]
    assert got["wLRE"] < 1e-12 and got["fc_corr"] < 1e-12 and got["bold"] < 1e-12
    assert got["gradient_wLRE"] < 1e-12 and got["gradient_loss"] < 1e-12  # the optax fit, in groups per device
    assert not got["foreign_mesh_groups"]


def test_the_group_size_follows_what_a_step_reads_per_member():
    """84-region members (about 113 kB of coupling each) stay in one vmap; 379-region ones (2.3 MB) go
    three at a time; never on an accelerator, never for a batch that fits."""
    def sized(n, b):
        w = np.ones((n, n)) - np.eye(n)
        model = stack_models([eib.network_model(w, dtype=jnp.float32)] * b)
        state = stack_trees([eib.initial_state(model_one, s) for s, model_one in
                             enumerate([eib.network_model(w, dtype=jnp.float32)] * b)])
        return member_groups(model.coupling, state.integ)

    assert sized(84, 16) is None
    assert sized(379, 3) is None
    assert sized(379, 8) == (3, None)
    assert batch.CPU_GROUP_BYTES == 8 * 2**20
