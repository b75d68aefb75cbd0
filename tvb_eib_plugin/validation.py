"""Checks on user input, run at the boundary before anything compiles.

Each check returns the input as a float64 numpy array (so callers can chain)
or raises :class:`InputError` naming the problem and the fix.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np


class InputError(ValueError):
    """Bad user input: the message says what is wrong and how to fix it."""


def check_square(a, name: str) -> np.ndarray:
    try:
        arr = np.asarray(a, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise InputError(f"{name} must be a numeric matrix: {err}") from None
    if arr.ndim != 2 or arr.shape[0] != arr.shape[1]:
        raise InputError(f"{name} must be a square (N, N) matrix, got shape {arr.shape}")
    if arr.shape[0] < 2:
        raise InputError(f"{name} needs at least 2 regions, got {arr.shape[0]}")
    bad = ~np.isfinite(arr)
    if bad.any():
        i, j = np.argwhere(bad)[0]
        raise InputError(
            f"{name} contains {int(bad.sum())} NaN/inf entries (first at [{i}, {j}]); "
            "replace them (e.g. with 0 for absent connections)")
    return arr


def check_weights(a, name: str = "weights") -> np.ndarray:
    """Square, finite, non-negative, not all zero."""
    arr = check_square(a, name)
    if (arr < 0).any():
        i, j = np.argwhere(arr < 0)[0]
        raise InputError(
            f"{name} has {int((arr < 0).sum())} negative entries (first {arr[i, j]:g} at [{i}, {j}]); "
            "structural weights must be >= 0")
    if not arr.any():
        raise InputError(f"{name} is all zeros: the network has no connections")
    return arr


def check_fc(a, name: str = "FC", n_regions: int | None = None, atol: float = 1e-6) -> np.ndarray:
    """Square, finite, symmetric, entries in [-1, 1]; the diagonal is set to 0."""
    arr = check_square(a, name)
    if n_regions is not None and arr.shape[0] != n_regions:
        raise InputError(
            f"{name} has {arr.shape[0]} regions but the connectivity has {n_regions}; "
            "both must use the same parcellation and order")
    asym = np.abs(arr - arr.T).max()
    if asym > atol:
        raise InputError(f"{name} is not symmetric (max |FC - FC.T| = {asym:.3g}); an FC matrix must be")
    off = arr[~np.eye(arr.shape[0], dtype=bool)]
    if np.abs(off).max() > 1.0 + atol:
        raise InputError(f"{name} has entries outside [-1, 1] (max |r| = {np.abs(off).max():.3g}); "
                         "pass Pearson correlations, not covariances")
    arr = 0.5 * (arr + arr.T)
    np.fill_diagonal(arr, 0.0)
    return arr


def check_same_shape(a: np.ndarray, b: np.ndarray, name_a: str, name_b: str) -> None:
    if a.shape != b.shape:
        raise InputError(f"{name_a} has shape {a.shape} but {name_b} has shape {b.shape}; they must match")


def check_labels(labels: Sequence[str], n_regions: int, name: str = "labels") -> list[str]:
    labels = [str(x) for x in labels]
    if len(labels) != n_regions:
        raise InputError(f"{name} has {len(labels)} entries but there are {n_regions} regions")
    dup = sorted({x for x in labels if labels.count(x) > 1})
    if dup:
        raise InputError(f"{name} are not unique: {dup[:5]}")
    return labels


def check_labels_agree(a: Sequence[str], b: Sequence[str], name_a: str, name_b: str) -> None:
    """Both label lists name the same regions in the same order."""
    a, b = list(a), list(b)
    if a == b:
        return
    if sorted(a) == sorted(b):
        raise InputError(f"{name_a} and {name_b} list the same regions in a different order; reorder one")
    only_a = [x for x in a if x not in b][:5]
    only_b = [x for x in b if x not in a][:5]
    raise InputError(
        f"region labels disagree between {name_a} and {name_b}: only in {name_a}: {only_a}, "
        f"only in {name_b}: {only_b}")
