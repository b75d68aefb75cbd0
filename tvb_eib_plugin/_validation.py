"""Checks on user input, run at the boundary before anything compiles.

Each check returns the input as a float64 numpy array (so callers can chain)
or raises :class:`InputError` naming the problem and the fix.  Input that is
legal but suspicious (an isolated region, a negative coupling, an FC whose
diagonal is not 1 or 0) goes through with an :class:`InputWarning`.
"""

from __future__ import annotations

import os
import sys
import warnings
from typing import Sequence

import numpy as np


class InputError(ValueError):
    """Bad user input: the message says what is wrong and how to fix it."""


class InputWarning(UserWarning):
    """Legal but suspicious input: the run goes ahead and the message says what looks wrong.

    Silence a case you have checked with ``warnings.filterwarnings("ignore", category=InputWarning)``.
    """


def warn_input(message: str) -> None:
    """Issue an :class:`InputWarning` attributed to the first caller outside this package,
    so that it points at the user's line (and Python shows it once per such line)."""
    package = os.path.dirname(os.path.abspath(__file__))
    frame, level = sys._getframe(1), 2
    # "<string>": the __init__ dataclasses generate, which runs Connectome's checks
    while frame.f_back is not None and (frame.f_code.co_filename.startswith(package)
                                        or frame.f_code.co_filename.startswith("<")):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, InputWarning, stacklevel=level)


#: Conduction delays above this are refused as a units slip (tract lengths in mm over a speed in m/s
#: give delays 1000x too long): the longest human cortico-cortical delays are a few tens of ms.
MAX_DELAY_MS = 1000.0


def check_delays(delays_ms, n: int) -> np.ndarray:
    """(N, N) conduction delays in ms: finite, >= 0 and under :data:`MAX_DELAY_MS`.  A negative or NaN delay
    would index the history ring outside what it holds, and a delay of seconds is a units slip: both are
    refused here, where the delays enter the model, rather than simulated as something else."""
    d = check_square(delays_ms, "delays_ms")
    if d.shape[0] != n:
        raise InputError(f"delays_ms is {d.shape[0]} x {d.shape[0]} but the weights have {n} regions")
    if (d < 0).any():
        i, j = np.argwhere(d < 0)[0]
        raise InputError(f"delays_ms has {int((d < 0).sum())} negative entries (first {d[i, j]:g} ms at [{i}, {j}]); "
                         "conduction delays are tract length / speed: check the tract lengths and the speed (> 0)")
    if d.max() > MAX_DELAY_MS:
        i, j = np.unravel_index(np.argmax(d), d.shape)
        raise InputError(f"delays_ms reaches {d.max():g} ms (at [{i}, {j}]), above {MAX_DELAY_MS:g} ms: tract lengths "
                         "in mm need a speed in mm/ms (m/s), e.g. 3.0; check both units")
    return d


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
    _warn_fc_diagonal(np.diag(arr), name)
    arr = 0.5 * (arr + arr.T)
    np.fill_diagonal(arr, 0.0)
    return arr


def _warn_fc_diagonal(diag: np.ndarray, name: str, atol: float = 1e-5) -> None:
    # A correlation matrix has 1 on its diagonal (or 0 where it was cleared); anything else
    # suggests a covariance, a Fisher-z matrix or a misread file.  The diagonal is unused.
    odd = np.flatnonzero((np.abs(diag) > atol) & (np.abs(diag - 1.0) > atol))
    if odd.size:
        i = odd[0]
        warn_input(f"{name}: {odd.size} diagonal entries are neither 1 nor 0 (first {diag[i]:g} at [{i}, {i}]); "
                   "is it a Pearson correlation matrix? The diagonal is set to 0 and not used")


def check_isolated(weights: np.ndarray, labels: Sequence[str], name: str = "weights") -> None:
    """Warn about regions without any connection to or from another region (self-connections aside)."""
    off = np.asarray(weights) != 0
    np.fill_diagonal(off, False)
    lonely = np.flatnonzero(~off.any(axis=0) & ~off.any(axis=1))
    if lonely.size:
        names = [str(labels[i]) for i in lonely]
        warn_input(f"{name}: {lonely.size} isolated region(s) with no connection to or from any other region: "
                   f"{names[:10]}{' ...' if lonely.size > 10 else ''}; they run as uncoupled nodes driven by noise "
                   "alone, so their FC with the rest cannot be fitted. Check the parcellation (white-matter or "
                   "corpus callosum labels?) or drop those regions")


def check_coupling_sign(couplings: dict) -> None:
    """One warning naming every coupling (name -> scalar or matrix: G, wLRE, wFFI) with negative entries."""
    found = []
    for name, value in couplings.items():
        arr = np.asarray(value, dtype=np.float64)
        if (arr < 0).any():
            found.append(f"{name} = {float(arr):g}" if arr.size == 1 else
                         f"{name} has {int((arr < 0).sum())} negative entries (min {arr.min():g})")
    if found:
        warn_input(f"negative coupling: {'; '.join(found)}. A negative coupling turns long-range excitation into "
                   "inhibition and back; EIB tuning keeps wLRE and wFFI >= 0 and clips them at its first update. "
                   "Use a coupling >= 0 unless you mean it")


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


def label_order(file_labels: Sequence[str], labels: Sequence[str], name_file: str, name_labels: str,
                size: int) -> list[int] | None:
    """Indices that put a (size, size) matrix whose rows and columns follow ``file_labels`` into
    the order of ``labels``, or None when it is in that order already.  Other regions are refused."""
    file_labels, labels = [str(x) for x in file_labels], [str(x) for x in labels]
    if len(file_labels) != size:
        raise InputError(f"{name_file} names {len(file_labels)} regions in its header but holds a "
                         f"{size} x {size} matrix; fix the header or remove it")
    if file_labels == labels:
        return None
    check_labels(file_labels, size, f"{name_file}: header labels")
    if sorted(file_labels) != sorted(labels):
        check_labels_agree(labels, file_labels, name_labels, name_file)  # raises, naming what differs
    position = {x: i for i, x in enumerate(file_labels)}
    return [position[x] for x in labels]


def warn_reordered(names: Sequence[str], name_labels: str, file_labels: Sequence[str], labels: Sequence[str]) -> None:
    """Say that the matrices of files ``names`` were reordered to ``name_labels``' order."""
    i = next(k for k, (x, y) in enumerate(zip(file_labels, labels)) if x != y)
    warn_input(f"{', '.join(names)} list{'s' if len(names) == 1 else ''} the regions of {name_labels} in another "
               f"order (first difference: position {i} is {file_labels[i]!r} there, {labels[i]!r} in "
               f"{name_labels}); rows and columns were reordered to match {name_labels}")


def reorder_to_labels(matrix: np.ndarray, file_labels: Sequence[str], labels: Sequence[str], name_file: str,
                      name_labels: str) -> np.ndarray:
    """``matrix``, whose rows and columns follow ``file_labels``, in the order of ``labels``.

    The same regions in another order are reordered (with an :class:`InputWarning`, so the
    user knows the file's order was not the one used); other regions are refused.
    """
    order = label_order(file_labels, labels, name_file, name_labels, matrix.shape[0])
    if order is None:
        return matrix
    warn_reordered([name_file], name_labels, [str(x) for x in file_labels], [str(x) for x in labels])
    return matrix[np.ix_(order, order)]
