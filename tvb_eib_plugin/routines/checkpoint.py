"""Checkpoints of a long tuning run: the whole carried state, its position and its history so far.

A checkpoint is one ``.npz`` file: every array leaf of the carried pytree
(model, simulation state with its noise key, FC window), the per-iteration
history recorded so far, and a JSON header with the routine's settings and
where the run stands.  Resuming restores the pytree leaf for leaf, so a run
continued from a checkpoint computes exactly what the unbroken run would
have (the chunk grid, and with it every rebuild of the FC moments, is the
same).  Files are written to a temporary name and renamed, so a run stopped
while writing leaves the previous checkpoint intact.
"""

from __future__ import annotations

import json
import os
from typing import Any

import jax
import numpy as np

from ..validation import InputError


def _is_key(x) -> bool:
    return isinstance(x, jax.Array) and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key)


def save_checkpoint(path: str | os.PathLike, carry: Any, position: dict, history: dict, settings: dict) -> None:
    """Write ``carry`` (a pytree of arrays and PRNG keys), ``position`` and ``history`` to ``path``."""
    leaves, treedef = jax.tree_util.tree_flatten(carry)
    arrays, kinds = {}, []
    for i, leaf in enumerate(leaves):
        if _is_key(leaf):
            arrays[f"leaf_{i}"] = np.asarray(jax.random.key_data(leaf))
            kinds.append(str(jax.random.key_impl(leaf)))
        else:
            arrays[f"leaf_{i}"] = np.asarray(leaf)
            kinds.append("")
    for k, v in history.items():
        arrays[f"history_{k}"] = np.asarray(v)
    header = dict(position=position, settings=settings, treedef=str(treedef), kinds=kinds, n_leaves=len(leaves))
    arrays["header"] = np.frombuffer(json.dumps(header, default=str).encode(), dtype=np.uint8)
    path = os.fspath(path)
    tmp = path + ".tmp.npz"
    np.savez(tmp, **arrays)
    os.replace(tmp, path)


def load_checkpoint(path: str | os.PathLike, like: Any, settings: dict) -> tuple[Any, dict, dict]:
    """Restore a checkpoint written for a carry shaped like ``like`` and the same ``settings``.

    Returns (carry, position, history).  Raises :class:`InputError` if the file
    belongs to another run (other settings, or another model shape).
    """
    with np.load(os.fspath(path)) as f:
        header = json.loads(bytes(f["header"]).decode())
        leaves = [f[f"leaf_{i}"] for i in range(header["n_leaves"])]
        history = {k[len("history_"):]: f[k] for k in f.files if k.startswith("history_")}
    saved = json.loads(json.dumps(settings, default=str))
    if header["settings"] != saved:
        changed = sorted(k for k in set(saved) | set(header["settings"])
                         if saved.get(k) != header["settings"].get(k))
        raise InputError(f"checkpoint {path} was written by a run with other settings ({changed}); "
                         "remove it or run with the same settings")
    like_leaves, treedef = jax.tree_util.tree_flatten(like)
    if header["treedef"] != str(treedef) or len(like_leaves) != len(leaves):
        raise InputError(f"checkpoint {path} holds another model's state (different network or options)")
    restored = []
    for leaf, ref, kind in zip(leaves, like_leaves, header["kinds"]):
        if kind:
            restored.append(jax.random.wrap_key_data(leaf, impl=kind))
            continue
        if leaf.shape != np.shape(ref) or leaf.dtype != np.asarray(ref).dtype:
            raise InputError(f"checkpoint {path} holds arrays of another shape or precision than this run's")
        restored.append(jax.numpy.asarray(leaf))
    return jax.tree_util.tree_unflatten(treedef, restored), header["position"], history
