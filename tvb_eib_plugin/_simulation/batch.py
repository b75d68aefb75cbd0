"""Batches of networks: many subjects (or noise seeds) as one pytree with a leading member axis.

A *batched* :class:`~tvb_eib_plugin._model.network.NetworkModel` is an ordinary one
whose every array leaf carries a leading axis of length B, one entry per
member (subject x seed).  Members share everything static (parcellation
size, integration step, scheme, BOLD model, the delay horizon) and differ in
their arrays: SC weights, delays, tuned parameters, noise keys.  Every
compiled chunk of the package runs on such a batch through :func:`over_members`,
one ``vmap`` around the same function that runs one network, so a batch
computes what its members would alone.

Conventions: the carried state keeps the member axis first; per-iteration
records come back as (iteration, member, ...), so the code that stacks,
thins and logs records treats a batch like one network.

Devices: :func:`shard_members` spreads the member axis over every local JAX
device (CPU host devices from ``XLA_FLAGS=--xla_force_host_platform_device_count=K``,
or GPUs); compiled chunks then run each device's members there.  On a CPU,
:func:`use_host_devices` makes those K devices (one per core) when it runs
before JAX's first computation: on 2 cores a batch of 8 dk_average subjects
tunes 1.5-1.7x faster on 2 host devices than on one.
"""

from __future__ import annotations

import functools
import os
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from .._validation import InputError


def batch_size(model) -> int | None:
    """Members in a batched model, or None for a single network."""
    w = model.coupling.weights
    return w.shape[0] if w.ndim == 3 else None


def stack_trees(trees: Sequence[Any]) -> Any:
    """Stack equal-structure pytrees along a new leading axis (PRNG keys included)."""
    return jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *trees)


def member(tree: Any, b: int) -> Any:
    """Member ``b`` of a batched pytree."""
    return jax.tree_util.tree_map(lambda x: x[b], tree)


def stack_models(models: Sequence) -> Any:
    """One batched model from single-network models of the same parcellation.

    Delay horizons are unified to the longest (a static size of the history
    ring); everything else static must agree, or :class:`InputError` says what differs.
    """
    if not models:
        raise InputError("a batch needs at least one model")
    sizes = {m.n_regions for m in models}
    if len(sizes) > 1:
        raise InputError(f"members of a batch must share a parcellation; region counts differ: {sorted(sizes)}")
    horizon = max(m.coupling.horizon for m in models)
    models = [m.replace(coupling=m.coupling.replace(horizon=horizon)) for m in models]
    first = jax.tree_util.tree_structure(models[0])
    for i, m in enumerate(models[1:], 1):
        if jax.tree_util.tree_structure(m) != first:
            raise InputError(f"member {i} differs from member 0 in its static settings (dt, scheme, noise, BOLD "
                             "model or TR); a batch runs one compiled program, so these must agree")
    return stack_trees(models)


def map_members(fn: Callable, in_axes: tuple, groups: tuple | None = None) -> Callable:
    """``fn`` mapped over the member axis of the arguments ``in_axes`` marks 0 (None: shared by every
    member): one ``vmap``, or with ``groups`` (from :func:`member_groups`) a few members at a time
    (:func:`map_in_groups`).  The carry keeps the member axis first, records get it second."""
    if groups is None:
        return jax.vmap(fn, in_axes=in_axes, out_axes=(0, 1))

    def run(*args):
        shared = tuple(a for a, axis in zip(args, in_axes) if axis is None)
        members = tuple(a for a, axis in zip(args, in_axes) if axis is not None)

        def by_member(shared, members):  # the arguments back in their order
            sh, mem = iter(shared), iter(members)
            return fn(*(next(sh) if axis is None else next(mem) for axis in in_axes))

        return map_in_groups(by_member, *groups)(shared, members)

    return run


@functools.cache
def _batched(fn: Callable, in_axes: tuple, static: tuple[str, ...], groups: tuple | None) -> Callable:
    def run(*args, **statics):
        return map_members(functools.partial(fn, **statics), in_axes, groups)(*args)

    return jax.jit(run, static_argnames=static)


def over_members(fn: Callable, batched: bool, in_axes: tuple, static: tuple[str, ...] = (),
                 groups: tuple | None = None) -> Callable:
    """``fn`` itself for a single network, or ``fn`` mapped over the member axis.

    ``fn(*args, **statics)`` must return ``(carry, records)``; mapped, the carry
    keeps the member axis first and records get it second (after their
    iteration axis).  ``in_axes`` says which positional arguments are batched
    (0) or shared (None); ``static`` names keyword arguments that select a
    compilation (chunk length, rule).  ``groups``: from :func:`member_groups`,
    CPU members run a few at a time instead of in one ``vmap``.  The mapped
    function is compiled once per (fn, in_axes, groups) and reused.
    """
    return _batched(fn, tuple(in_axes), tuple(static), groups) if batched else fn


def use_host_devices(count: int | None = None) -> int:
    """Split the CPU into ``count`` JAX devices (default: one per core) so that a batch runs on all cores at once.

    It sets ``XLA_FLAGS=--xla_force_host_platform_device_count=count`` (the seed
    script's line), which JAX reads when it starts its CPU backend: call it after
    ``import jax`` but before the first computation.  A count already in
    ``XLA_FLAGS`` is kept.  Results do not depend on the device count (each
    member runs the same program on whichever device holds it).

    Returns the number of CPU devices in effect (1 where the backend had
    already started).
    """
    count = count or os.cpu_count() or 1
    if count < 1:
        raise InputError(f"host device count must be >= 1, got {count}")
    flags = os.environ.get("XLA_FLAGS", "")
    if "xla_force_host_platform_device_count" not in flags:
        os.environ["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count={count}".strip()
    return len(jax.devices("cpu"))


def local_devices() -> list:
    """Every local JAX device of the default backend."""
    return jax.local_devices()


def padded_size(n: int, devices: int | None = None) -> int:
    """``n`` rounded up to a multiple of the device count (each device gets equal work)."""
    d = devices or len(local_devices())
    return -(-n // d) * d


def shard_members(tree: Any, devices: Sequence | None = None) -> Any:
    """Place the leading (member) axis of every array in ``tree`` across ``devices``
    (default: all local devices).  The member count must divide evenly: see :func:`padded_size`."""
    devices = list(devices or local_devices())
    if len(devices) == 1:
        return jax.device_put(tree, devices[0])
    mesh = jax.sharding.Mesh(np.asarray(devices), ("member",))
    split = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("member"))

    def place(x):
        if x.shape[0] % len(devices):
            raise InputError(f"{x.shape[0]} members do not divide over {len(devices)} devices; pad the batch")
        return jax.device_put(x, split)

    return jax.tree_util.tree_map(place, tree)


def pad_members(tree: Any, size: int) -> Any:
    """Repeat the last member until the batch has ``size`` members (padding is dropped after the run)."""

    def pad(x):
        extra = size - x.shape[0]
        return x if extra <= 0 else jnp.concatenate([x, jnp.repeat(x[-1:], extra, axis=0)])

    return jax.tree_util.tree_map(pad, tree)


#: A CPU device runs its members a few at a time once their per-step arrays exceed this (see member_groups).
CPU_GROUP_BYTES = 8 * 2**20


def member_groups(*trees: Any) -> tuple[int, Any] | None:
    """``(members per group, mesh or None)`` for a batch on CPU devices that should not run as one
    ``vmap``; None where it should (an accelerator, or members that fit the caches together).

    Every step of a vmapped loop reads each member's coupling (weights, wLRE, wFFI: N^2 each, and the
    N^2 delays) and state.  Once the members on one CPU device hold more than :data:`CPU_GROUP_BYTES`,
    a step waits on memory instead of the caches: at 379 regions with delays on 2 cores, 16 members
    on one device cost 145-180 us per member-step, one network 78.  Run in groups of at most
    ``CPU_GROUP_BYTES`` (three such members), one group after another inside the same compiled loop
    (``lax.map`` with a batch size, per device under ``shard_map``), they cost 71-74.  ``trees``: what
    a step reads of every member (the batched coupling and integrator state), whose sharding also
    says which devices hold the members.  84-region members (113 kB each) stay in one vmap.
    """
    leaves = [x for x in jax.tree_util.tree_leaves(trees) if hasattr(x, "sharding") and x.ndim > 0]
    if not leaves or next(iter(leaves[0].devices())).platform != "cpu":
        return None
    sharding = leaves[0].sharding
    mesh = None
    if isinstance(sharding, jax.sharding.NamedSharding):  # only the layout shard_members makes; others keep vmap
        if tuple(sharding.mesh.axis_names) != ("member",) or tuple(sharding.spec)[:1] != ("member",):
            return None
        mesh = sharding.mesh
    elif len(sharding.device_set) > 1:
        return None
    devices = 1 if mesh is None else mesh.size
    members = leaves[0].shape[0]
    per_member = sum(x.size * x.dtype.itemsize for x in leaves if not jax.dtypes.issubdtype(
        x.dtype, jax.dtypes.prng_key)) / members
    group = max(1, int(CPU_GROUP_BYTES // per_member))
    return (group, mesh) if members // devices > group else None


def map_in_groups(fn: Callable, group: int, mesh=None) -> Callable:
    """``fn(shared, member) -> (carry, records)`` for one member, mapped over the leading member axis of
    ``members`` ``group`` at a time (``lax.map`` with that batch size), on each device of ``mesh`` its
    own members (``shard_map``): the carry keeps the member axis first, records get it second, as
    under :func:`over_members`.  ``shared`` is the same for every member."""
    def local(shared, members):
        carry, records = jax.lax.map(lambda m: fn(shared, m), members, batch_size=group)
        return carry, jax.tree_util.tree_map(lambda r: jnp.moveaxis(r, 0, 1), records)

    if mesh is None:
        return local
    member = jax.sharding.PartitionSpec("member")
    # check_vma off: a routine's loop may start a carry from a constant (the same on every device) that
    # its members then make device-varying (the gradient's sum over noise samples); the type check
    # would refuse that scan, though each device computes its own members exactly as vmap would
    return jax.shard_map(local, mesh=mesh, in_specs=(jax.sharding.PartitionSpec(), member),
                         out_specs=(member, jax.sharding.PartitionSpec(None, "member")), check_vma=False)
