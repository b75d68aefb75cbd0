"""Connectomes and target FC: the shipped dk_average data, tvb-data's zips,
BIDS ``relmat`` folders and plain matrix files.

Everything here is numpy and checked at load time; nothing is downloaded.
"""

from __future__ import annotations

import dataclasses
import glob
import os
import re
from importlib import resources
from typing import Sequence

import numpy as np

from .._validation import (InputError, check_fc, check_isolated, check_labels, check_square, check_weights,
                         label_order, reorder_to_labels, warn_reordered)

SHIPPED = ("dk_average",)
TVB_DATA = ("connectivity_66", "connectivity_68", "connectivity_76", "connectivity_96", "connectivity_192")

DK_AVERAGE_ATTRIBUTION = (
    "dk_average: group-average 84-region Desikan-Killiany SC and FC published with the reproduction of "
    "Schirner, Deco & Ritter (2023), doi:10.1038/s41467-023-38626-y; CC-BY-4.0")


@dataclasses.dataclass(frozen=True)
class Connectome:
    """A parcellated network and, optionally, its target FC (numpy, float64).

    Attributes:
        labels: region names, length N.
        weights: (N, N) SC weights as loaded (not normalised), ``[i, j]`` from j to i.
        tract_lengths: (N, N) in mm, or None.
        fc_target: (N, N) empirical FC with zero diagonal, or None.
        speed: conduction speed in mm/ms (delays = tract_lengths / speed).
        name: where it came from, for provenance.
    """

    labels: tuple[str, ...]
    weights: np.ndarray
    tract_lengths: np.ndarray | None = None
    fc_target: np.ndarray | None = None
    speed: float = 3.0
    name: str = "custom"

    def __post_init__(self):
        w = check_weights(self.weights, f"{self.name}: weights")
        n = w.shape[0]
        object.__setattr__(self, "weights", w)
        object.__setattr__(self, "labels", tuple(check_labels(self.labels, n, f"{self.name}: labels")))
        check_isolated(w, self.labels, f"{self.name}: weights")
        if self.tract_lengths is not None:
            tl = check_weights(self.tract_lengths, f"{self.name}: tract_lengths")
            if tl.shape != w.shape:
                raise InputError(f"{self.name}: tract_lengths {tl.shape} and weights {w.shape} differ in shape")
            object.__setattr__(self, "tract_lengths", tl)
        if self.fc_target is not None:
            object.__setattr__(self, "fc_target", check_fc(self.fc_target, f"{self.name}: FC", n))
        if not self.speed > 0:
            raise InputError(f"{self.name}: conduction speed must be > 0 mm/ms, got {self.speed}")

    @property
    def n_regions(self) -> int:
        return self.weights.shape[0]

    def normalised_weights(self, mode: str = "max") -> np.ndarray:
        """Weights scaled for simulation: ``"max"`` (W / max W, the reference), ``"sqrt_max10"``
        (the paper's preprocessing) or ``"none"``; see :func:`normalise_weights`."""
        return normalise_weights(self.weights, mode)

    def delays_ms(self) -> np.ndarray | None:
        """Conduction delays tract_lengths / speed in ms, or None without tract lengths."""
        return None if self.tract_lengths is None else self.tract_lengths / self.speed

    def with_fc(self, fc) -> "Connectome":
        """A copy with target FC ``fc`` (array or file); a file's region labels, when it
        has them, must name this connectome's regions (in another order, the FC is
        reordered to this connectome's, with an InputWarning)."""
        if isinstance(fc, (str, os.PathLike)):
            fc, labels = load_labelled_matrix(fc)
            if labels is not None:
                fc = reorder_to_labels(fc, labels, self.labels, "the FC file's header", f"{self.name} labels")
        return dataclasses.replace(self, fc_target=fc)


#: Weight normalisations: W / max W (the reference workflow), the paper's preprocessing, or none.
NORMALISE_MODES = ("max", "sqrt_max10", "none")


def normalise_weights(weights: np.ndarray, mode: str = "max") -> np.ndarray:
    """SC weights scaled for simulation.

    ``"sqrt_max10"`` is Schirner et al.'s (2023) preprocessing (their
    ``preprocess_HCP_data.m``): sqrt(W) / max sqrt(W) / 10, on the edges of a
    mask.  Their mask keeps the edges present in 99% of the subjects and their
    maximum is that of the group-mean SC; for the one (average) SC given here
    both reduce to W itself: the mask is W > 0 (sqrt keeps zeros at zero) and
    the strongest edge becomes 0.1.  It couples far more weakly than ``"max"``
    (whose strongest edge is 1), and evenly: weak edges gain, strong ones lose.
    """
    if mode == "max":
        return weights / weights.max()
    if mode == "sqrt_max10":
        root = np.sqrt(np.asarray(weights, dtype=np.float64))
        return root / root.max() / 10.0
    if mode == "none":
        return np.array(weights, dtype=np.float64)
    raise InputError(f"weight normalisation must be one of {NORMALISE_MODES}, got {mode!r}")


# -- plain files ---------------------------------------------------------------------------------

def load_matrix(path: str | os.PathLike, key: str | None = None) -> np.ndarray:
    """Read a square matrix from .npy, .csv, .tsv, .txt or .mat (``key``: the variable).

    Text files may have a header row and a label column; they are detected
    and dropped (:func:`load_labelled_matrix` keeps the labels).
    """
    return load_labelled_matrix(path, key)[0]


def load_labelled_matrix(path: str | os.PathLike, key: str | None = None) -> tuple[np.ndarray, list[str] | None]:
    """A square matrix and the region labels of its text header (or label column), if any."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise InputError(f"no such file: {path}")
    ext = os.path.splitext(path)[1].lower()
    if ext == ".npy":
        arr = _load_npy(path)
    elif ext == ".mat":
        arr = _load_mat(path, key)
    elif ext in (".csv", ".tsv", ".txt", ".dat"):
        arr, labels = _load_text(path, "," if ext == ".csv" else None)
        return check_square(arr, path), labels
    else:
        raise InputError(f"{path}: unknown matrix format {ext!r}; use .npy, .csv, .tsv, .txt or .mat")
    return check_square(arr, path), None


def _load_npy(path: str) -> np.ndarray:
    try:
        return np.load(path)  # allow_pickle=False: an object array is refused, never executed
    except (ValueError, OSError, EOFError) as err:
        raise InputError(f"{path}: not a readable NumPy .npy matrix ({err}); the file may be truncated or "
                         "something else: write it with numpy.save") from None


def _load_text(path: str, delimiter: str | None) -> tuple[np.ndarray, list[str] | None]:
    try:
        with open(path) as fh:
            rows = [re.split(r"[,\t ]+" if delimiter is None else delimiter, ln.strip()) for ln in fh if ln.strip()]
    except UnicodeDecodeError as err:
        raise InputError(f"{path}: not a text matrix ({err}); is it a binary file with a text extension?") from None

    def numeric(cell: str) -> bool:
        try:
            float(cell)
            return True
        except ValueError:
            return False

    labels = None
    if rows and not all(numeric(c) for c in rows[0][1:]):
        header, rows = rows[0], rows[1:]
        labels = header[-len(rows):] if rows else None
    if rows and not numeric(rows[0][0]):
        row_labels = [r[0] for r in rows]
        if labels is not None and row_labels != labels:  # a matrix whose rows and columns disagree is no matrix
            raise InputError(f"{path}: the header and the label column list the regions differently "
                             f"({labels[:3]}... against {row_labels[:3]}...); rows and columns must be in one order")
        labels = row_labels
        rows = [r[1:] for r in rows]
    ragged = [i for i, r in enumerate(rows) if len(r) != len(rows[0])]
    if ragged:
        i = ragged[0]
        raise InputError(f"{path}: row {i + 1} of the matrix has {len(rows[i])} values but row 1 has "
                         f"{len(rows[0])}; the file is truncated or ragged")
    try:
        return np.array([[float(c) for c in r] for r in rows]), labels
    except ValueError as err:
        raise InputError(f"{path}: not a numeric matrix ({err})") from None


def _load_mat(path: str, key: str | None) -> np.ndarray:
    from scipy.io import loadmat

    try:
        content = {k: v for k, v in loadmat(path).items() if not k.startswith("__")}
    except NotImplementedError as err:  # scipy reads MATLAB files up to v7.2
        raise InputError(f"{path}: {err}; save it with save(..., '-v7') or as .npy") from None
    except Exception as err:  # scipy raises assorted errors (ValueError, OSError, IndexError...) for bad files
        raise InputError(f"{path}: not a readable MATLAB .mat file ({type(err).__name__}: {err}); "
                         "it may be truncated or something else") from None
    if key is not None:
        if key not in content:
            raise InputError(f"{path}: no variable {key!r}; it holds {sorted(content)}")
        square = [key]
    else:
        square = [k for k, v in content.items() if np.ndim(v) == 2 and v.shape[0] == v.shape[1] and v.shape[0] > 1]
    if len(square) != 1:
        raise InputError(f"{path}: pass key=...; square matrices found: {square}")
    return check_square(content[square[0]], f"{path}[{square[0]}]")


def load_labels(path: str | os.PathLike) -> list[str]:
    """Region labels: one per line, or a BIDS nodeindices table with a ``label`` column."""
    try:
        with open(path) as fh:
            lines = [ln.rstrip("\n") for ln in fh if ln.strip()]
    except UnicodeDecodeError as err:
        raise InputError(f"{path}: not a text file of region labels ({err})") from None
    if not lines:
        raise InputError(f"{path}: no region labels in it")
    header = lines[0].split("\t")
    if "label" in header:
        col = header.index("label")
        cells = [ln.split("\t") for ln in lines[1:]]
        short = [i for i, c in enumerate(cells) if len(c) <= col]
        if short:
            raise InputError(f"{path}: line {short[0] + 2} has no 'label' column (column {col + 1}); "
                             "the table is truncated or ragged")
        return [c[col] for c in cells]
    return [ln.strip() for ln in lines]


# -- BIDS relmat ---------------------------------------------------------------------------------

def read_relmat(folder: str | os.PathLike) -> tuple[dict[str, np.ndarray], list[str]]:
    """All ``*_meas-<measure>_relmat.dense.tsv`` matrices of a folder, and its labels.

    Returns:
        ({measure: (N, N) matrix}, labels from ``*_nodeindices.tsv``).  Every matrix is in
        the order of those labels: a matrix file whose header names the same regions in
        another order is reordered (with an InputWarning), one naming other regions is refused.
    """
    folder = os.fspath(folder)
    if not os.path.isdir(folder):
        raise InputError(f"not a folder: {folder}")
    paths = {}
    for path in sorted(glob.glob(os.path.join(folder, "*_relmat.dense.tsv"))):
        match = re.search(r"meas-([A-Za-z0-9]+)_relmat", os.path.basename(path))
        if match:
            paths[match.group(1)] = path
    if not paths:
        raise InputError(f"{folder}: no *_meas-<measure>_relmat.dense.tsv files (BIDS relmat layout)")
    index = sorted(glob.glob(os.path.join(folder, "*_nodeindices.tsv")))
    if not index:
        raise InputError(f"{folder}: no *_nodeindices.tsv with the region labels")
    labels = load_labels(index[0])
    index_name = os.path.basename(index[0])
    matrices, reordered, example = {}, [], None
    for measure, path in paths.items():
        matrix, file_labels = load_labelled_matrix(path)
        matrices[measure], order = _relmat_in_order(matrix, file_labels, labels, os.path.basename(path), index_name)
        if order is not None:
            reordered.append(os.path.basename(path))
            example = example or file_labels
    if reordered:  # one warning for the folder, naming every file that was reordered
        warn_reordered(reordered, index_name, example, labels)
    return matrices, labels


def _relmat_in_order(matrix: np.ndarray, file_labels, labels: list[str], name: str, index_name: str):
    """A relmat matrix in the order of the folder's nodeindices labels, and the order applied (None: none)."""
    if file_labels is not None:
        order = label_order(file_labels, labels, name, index_name, matrix.shape[0])
        return (matrix, None) if order is None else (matrix[np.ix_(order, order)], order)
    if matrix.shape[0] != len(labels):
        raise InputError(f"{name} is {matrix.shape[0]} x {matrix.shape[1]} but {index_name} lists {len(labels)} "
                         "regions; every matrix of the folder must cover the regions of its nodeindices")
    return matrix, None


def load_bids(
    folder: str | os.PathLike,
    weights: str = "streamlineCount",
    lengths: str | None = "tractLength",
    fc: str | None = "BoldCorrelation",
    speed: float = 3.0,
    name: str | None = None,
) -> Connectome:
    """A :class:`Connectome` from a BIDS relmat folder; measure names select the files."""
    matrices, labels = read_relmat(folder)
    if weights not in matrices:
        raise InputError(f"{folder}: no measure {weights!r}; found {sorted(matrices)}")
    return Connectome(
        labels=tuple(labels),
        weights=matrices[weights],
        tract_lengths=matrices.get(lengths) if lengths else None,
        fc_target=matrices.get(fc) if fc else None,
        speed=speed,
        name=name or os.path.basename(os.path.normpath(folder)),
    )


# -- named data sets ----------------------------------------------------------------------------

def dataset_names() -> tuple[str, ...]:
    return SHIPPED + TVB_DATA


def load_dataset(name: str = "dk_average", speed: float = 3.0) -> Connectome:
    """A named data set: ``dk_average`` (shipped, with target FC) or tvb-data's
    ``connectivity_66/68/76/96/192`` (no FC: add one with :meth:`Connectome.with_fc`)."""
    if name in SHIPPED:
        folder = resources.files("tvb_eib_plugin") / "shipped" / name
        return load_bids(str(folder), speed=speed, name=name)
    if name in TVB_DATA:
        from ..tvb._adapters import connectome_from_tvb, tvb_connectivity

        return connectome_from_tvb(tvb_connectivity(name), speed=speed, name=name)
    raise InputError(f"unknown data set {name!r}; known: {', '.join(dataset_names())}")


def load_connectome(
    source: str | os.PathLike | Connectome,
    fc: str | os.PathLike | np.ndarray | None = None,
    labels: Sequence[str] | None = None,
    speed: float = 3.0,
) -> Connectome:
    """Anything a user may point at: a data set name, a BIDS folder, a TVB
    connectivity zip, or a Connectome; ``fc`` optionally replaces the target."""
    if isinstance(source, Connectome):
        con = source
    elif str(source) in dataset_names():
        con = load_dataset(str(source), speed=speed)
    elif os.path.isdir(source):
        con = load_bids(source, speed=speed)
    elif str(source).endswith(".zip"):
        from ..tvb._adapters import connectome_from_tvb, tvb_connectivity

        con = connectome_from_tvb(tvb_connectivity(str(source)), speed=speed, name=os.path.basename(str(source)))
    else:
        raise InputError(
            f"cannot read a connectome from {source!r}: give a data set name ({', '.join(dataset_names())}), "
            "a BIDS relmat folder or a TVB connectivity .zip")
    if labels is not None:
        con = dataclasses.replace(con, labels=tuple(labels))
    if fc is not None:
        con = con.with_fc(fc)
    return con
