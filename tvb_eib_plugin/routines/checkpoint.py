"""Checkpoints of a long tuning run: the whole carried state, its position and its history so far.

A checkpoint is one ``.npz`` file: every array leaf of the carried pytree
(model, simulation state with its noise key, FC window), the per-iteration
history recorded so far, and a JSON header with the routine's settings, a
fingerprint of the run's inputs and where the run stands.  Resuming restores
the pytree leaf for leaf, so a run continued from a checkpoint computes
exactly what the unbroken run would have (the chunk grid, and with it every
rebuild of the FC moments, is the same).  Files are written to a temporary
name and renamed, so a run stopped while writing leaves the previous
checkpoint intact.

A checkpoint is bound to its run: it resumes only a run with the same
settings and the same inputs (:func:`fingerprint`: SC weights, delays, the
rest of the fixed model, target FC, seeds, region labels, the pipeline before
the routine), so a file left by another subject, FC or seed is refused, never
resumed.  A file is known by its real path (:func:`checkpoint_path`), and a
cohort batch writes its own file (:func:`batch_path`).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import zipfile
from typing import Any, Sequence

import jax
import numpy as np

from .._simulation.batch import batch_size
from .._outputs import write_atomic
from .._validation import InputError

#: the parameters routines tune: bound through the settings and the pipeline, not their current values
TUNED = (".node.J_i", ".coupling.wLRE", ".coupling.wFFI")
#: what each fingerprint entry covers, for the message that refuses a checkpoint
INPUTS = {
    "weights": "SC weights",
    "delays": "conduction delays (tract lengths / speed)",
    "model": "fixed model parameters (node, noise, dt, BOLD, precision)",
    "fc_target": "target FC",
    "seed": "noise seed(s)",
    "labels": "region labels",
    "transient_ms": "transient length",
    "initial": "starting J_i / wLRE / wFFI",
    "upstream": "settings of the routines run before",
}
_FIX = "remove the file (the run then starts afresh) or give this run another checkpoint path"


def checkpoint_path(path: str | os.PathLike) -> str:
    """The one name of a checkpoint file: ``ck.npz``, ``./ck.npz``, ``sub/../ck.npz``, its absolute
    path or a symlink to it all name the same file (and its temporary file sits beside the real one)."""
    return os.path.realpath(os.path.expanduser(os.fspath(path)))


def batch_path(path: str | os.PathLike, subjects: Sequence[str], seeds: Sequence[int]) -> str:
    """The checkpoint file of one cohort batch: ``ck.npz`` -> ``ck.<subject>.seed<k>.npz`` for one member,
    ``ck.<first subject>+<more>.<digest of the members>.npz`` for many, so no two batches share a file."""
    stem, ext = os.path.splitext(os.fspath(path))
    first = re.sub(r"[^\w.-]", "_", str(subjects[0]))
    if len(subjects) * len(seeds) == 1:
        return f"{stem}.{first}.seed{int(seeds[0])}{ext}"
    members = _text_digest([[str(s) for s in subjects], [int(k) for k in seeds]])[:8]
    return f"{stem}.{first}+{len(subjects) * len(seeds) - 1}.{members}{ext}"


def _text_digest(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _digest(arrays: Sequence, salt: str = "") -> str:
    h = hashlib.sha256(salt.encode())
    for a in arrays:
        a = np.ascontiguousarray(np.asarray(a))
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()[:16]


def _per_member(arrays: Sequence, members: int | None, salt: str = "") -> str | list[str]:
    """One digest of ``arrays``, or one per member of a batch (their leading axis)."""
    arrays = [np.asarray(a) for a in arrays]
    if members is None:
        return _digest(arrays, salt)
    return [_digest([a[b] for a in arrays], salt) for b in range(members)]


def _leaves(model) -> tuple[dict[str, np.ndarray], str]:
    leaves, treedef = jax.tree_util.tree_flatten_with_path(model)
    return {jax.tree_util.keystr(p): v for p, v in leaves}, str(treedef)


def fingerprint(model, target_fc, seeds, context: dict | None = None) -> dict:
    """What a tuning run is built from, as digests (a list, one per member, for a batch).

    The SC weights, the integer delays, the rest of the model but its tuned
    parameters (node and noise parameters, step, BOLD model, precision), the
    target FC as the run uses it (in the model's precision), the seed(s), and
    ``context`` (see :func:`pipeline_inputs`).
    """
    members = batch_size(model)
    leaves, treedef = _leaves(model)
    fixed = [v for k, v in leaves.items() if k not in TUNED + (".coupling.weights", ".coupling.idelays")]
    out = dict(weights=_per_member([leaves[".coupling.weights"]], members),
               delays=_per_member([leaves[".coupling.idelays"]], members),
               model=_per_member(fixed, members, treedef),
               fc_target=_per_member([np.asarray(target_fc, model.dtype)], members),
               seed=[int(k) for k in seeds] if members is not None else int(seeds))
    return {**out, **(context or {})}


def pipeline_inputs(model, labels: Sequence[str] | None, transient_ms: float, upstream: Sequence[dict]) -> dict:
    """What shapes a routine's start beyond its model's fixed parts: the region labels, the transient,
    the tuned parameters' starting values and the settings of the routines run before it."""
    leaves, _ = _leaves(model)
    upstream = [{k: v for k, v in s.items() if k != "checkpoint"} for s in upstream]
    return dict(labels=None if labels is None else _text_digest([str(x) for x in labels]),
                transient_ms=float(transient_ms),
                initial=_per_member([leaves[k] for k in TUNED], batch_size(model)),
                upstream=_text_digest(upstream))


def _is_key(x) -> bool:
    return isinstance(x, jax.Array) and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key)


def _plain(obj) -> Any:
    """``obj`` as it reads back from the JSON header."""
    return json.loads(json.dumps(obj, default=str))


def save_checkpoint(path: str | os.PathLike, carry: Any, position: dict, history: dict, settings: dict,
                    inputs: dict) -> None:
    """Write ``carry`` (a pytree of arrays and PRNG keys), ``position``, ``history``, the run's
    ``settings`` and its ``inputs`` (:func:`fingerprint`) to ``path``."""
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
    header = dict(position=position, settings=settings, inputs=inputs, treedef=str(treedef), kinds=kinds,
                  n_leaves=len(leaves))
    arrays["header"] = np.frombuffer(json.dumps(header, default=str).encode(), dtype=np.uint8)

    def write(tmp: str) -> None:
        with open(tmp, "wb") as f:  # a file object: numpy adds no ".npz" to a name that lacks it
            np.savez(f, **arrays)

    write_atomic(checkpoint_path(path), write)


_HEADER = dict(position=dict, settings=dict, inputs=dict, treedef=str, kinds=list, n_leaves=int)


def read_checkpoint(path: str | os.PathLike) -> tuple[dict, list[np.ndarray], dict]:
    """(header, leaves, history) of a checkpoint file, every array read (and CRC-checked);
    :class:`InputError` if the file is not a whole checkpoint (truncated, garbage, no header...)."""
    path = checkpoint_path(path)
    try:
        if not zipfile.is_zipfile(path):  # numpy's own message would suggest unpickling it
            raise ValueError("an empty file" if os.path.getsize(path) == 0 else "not an .npz (zip) archive")
        with np.load(path, allow_pickle=False) as f:
            header = json.loads(bytes(f["header"]).decode())
            for key, kind in _HEADER.items():
                if not isinstance(header.get(key), kind):
                    raise ValueError(f"its header has no {key!r}")
            leaves = [f[f"leaf_{i}"] for i in range(header["n_leaves"])]
            history = {k[len("history_"):]: f[k] for k in f.files if k.startswith("history_")}
        if len(header["kinds"]) != len(leaves) or not {"stage", "done"} <= set(header["position"]):
            raise ValueError("its header does not describe its arrays")
    except (OSError, EOFError, ValueError, KeyError, TypeError, zipfile.BadZipFile) as err:
        raise InputError(f"checkpoint {path} cannot be read as a tuning checkpoint ({type(err).__name__}: {err}; "
                         "truncated, overwritten, from an older version or not written by this package): "
                         f"{_FIX}") from None
    return header, leaves, history


def differences(saved: dict, now: dict) -> list[str]:
    """The entries of two fingerprints that differ, described (with the batch members concerned)."""
    out = []
    for key in list(now) + [k for k in saved if k not in now]:
        a, b = saved.get(key), now.get(key)
        if a == b:
            continue
        what = INPUTS.get(key, key)
        if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
            what += f" of batch member(s) {[i for i, (x, y) in enumerate(zip(a, b)) if x != y]}"
        out.append(what)
    return out


def check_checkpoint(path: str | os.PathLike, settings: dict, inputs: dict) -> tuple[dict, list, dict]:
    """Read a checkpoint and refuse it unless it was written by a run with these ``settings`` and
    ``inputs``; returns what :func:`read_checkpoint` does."""
    header, leaves, history = read_checkpoint(path)
    path = checkpoint_path(path)
    # the file's own name is no setting: the same file under another name is the same checkpoint
    saved, now = ({k: v for k, v in _plain(s).items() if k != "checkpoint"} for s in (header["settings"], settings))
    if saved != now:
        changed = sorted(k for k in set(saved) | set(now) if saved.get(k) != now.get(k))
        raise InputError(f"checkpoint {path} was written by a run with other settings ({changed}); {_FIX}, "
                         "or run with the same settings")
    changed = differences(header["inputs"], _plain(inputs))
    if changed:
        raise InputError(f"checkpoint {path} belongs to another run: its {'; '.join(changed)} differ from this "
                         f"run's; {_FIX}")
    return header, leaves, history


def load_checkpoint(path: str | os.PathLike, like: Any, settings: dict, inputs: dict) -> tuple[Any, dict, dict]:
    """Restore a checkpoint written for a carry shaped like ``like``, the same ``settings`` and ``inputs``.

    Returns (carry, position, history).  Raises :class:`InputError` if the file
    is no readable checkpoint or belongs to another run (other settings or
    inputs, or another model shape).
    """
    header, leaves, history = check_checkpoint(path, settings, inputs)
    path = checkpoint_path(path)
    like_leaves, treedef = jax.tree_util.tree_flatten(like)
    if header["treedef"] != str(treedef) or len(like_leaves) != len(leaves):
        raise InputError(f"checkpoint {path} holds another model's state (different network or options)")
    restored = []
    for leaf, ref, kind in zip(leaves, like_leaves, header["kinds"]):
        if kind:
            restored.append(jax.random.wrap_key_data(leaf, impl=kind))
            continue
        if leaf.shape != np.shape(ref) or leaf.dtype != np.asarray(ref).dtype:
            raise InputError(f"checkpoint {path} holds arrays of another shape or precision than this run's "
                             "(a cohort batch of another size, e.g. on another number of devices?)")
        restored.append(jax.numpy.asarray(leaf))
    return jax.tree_util.tree_unflatten(treedef, restored), header["position"], history
