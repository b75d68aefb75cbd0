"""What every peer shares: the model's parameters, the dk_average network, PeerUnavailable, small helpers."""

from __future__ import annotations

import os
import resource
import statistics
from pathlib import Path

import numpy as np


class PeerUnavailable(ImportError):
    """A peer package (tvb-library / tvb-data / tvboptim) is not installed."""



#: Reduced Wong-Wang exc/inh parameters shared by all peers (= our model).
MODEL_PARAMS = dict(
    a_e=310.0, b_e=125.0, d_e=0.160, gamma_e=0.641e-3, tau_e=100.0,
    w_p=1.4, W_e=1.0,
    a_i=615.0, b_i=177.0, d_i=0.087, gamma_i=1e-3, tau_i=10.0, W_i=0.7,
    J_N=0.15, J_i=1.0, I_o=0.382, I_ext=0.0, lamda=1.0,
)
G = 1.0            # global coupling
SIGMA = 0.01       # additive noise std on S_e (tvboptim convention)
NSIG = SIGMA ** 2 / 2.0  # TVB convention: nsig = sigma**2 / 2 = 5e-5
TR_MS = 720.0      # BOLD repetition time
INITIAL_STATE = 0.001

_DK_PREFIX = "atlas-DesikanKilliany_meas-"
_DK_FILES = dict(
    weights=_DK_PREFIX + "streamlineCount_relmat.dense.tsv",
    lengths=_DK_PREFIX + "tractLength_relmat.dense.tsv",
    fc=_DK_PREFIX + "BoldCorrelation_relmat.dense.tsv",
    labels="atlas-DesikanKilliany_nodeindices.tsv",
)



def _dk_average_dir(data_dir=None) -> Path | None:
    cands = []
    if data_dir is not None:
        cands.append(Path(data_dir))
    if os.environ.get("TVB_EIB_DK_AVERAGE"):
        cands.append(Path(os.environ["TVB_EIB_DK_AVERAGE"]))
    here = Path(__file__).resolve()
    cands += [here.parents[3] / "shared" / "data" / "dk_average",   # /work/shared
              here.parents[2] / "shared" / "data" / "dk_average",
              Path("/work/shared/data/dk_average")]
    for c in cands:
        if (c / _DK_FILES["weights"]).exists():
            return c
    return None


def load_dk_average(data_dir=None):
    """Return ``(weights/max, tract_lengths_mm, fc_target, labels)`` (numpy).

    Reads the BIDS relmat TSVs (no header, tab separated).  ``data_dir``
    defaults to ``$TVB_EIB_DK_AVERAGE`` or ``/work/shared/data/dk_average``.
    Falls back to tvboptim's bundled copy (identical data up to float32
    rounding) when the TSVs are not found.
    """
    d = _dk_average_dir(data_dir)
    if d is not None:
        w = np.loadtxt(d / _DK_FILES["weights"], delimiter="\t")
        lengths = np.loadtxt(d / _DK_FILES["lengths"], delimiter="\t")
        fc = np.loadtxt(d / _DK_FILES["fc"], delimiter="\t")
        labels = [ln.split("\t")[3] for ln in
                  (d / _DK_FILES["labels"]).read_text().splitlines()[1:] if ln]
    else:  # pragma: no cover - fallback only
        try:
            from tvboptim.data import (load_functional_connectivity,
                                       load_structural_connectivity)
        except ImportError as e:
            raise FileNotFoundError(
                "dk_average TSVs not found (set TVB_EIB_DK_AVERAGE)") from e
        w, lengths, labels = load_structural_connectivity("dk_average")
        fc = load_functional_connectivity("dk_average")
        w, lengths, fc = (np.asarray(x, dtype=np.float64) for x in (w, lengths, fc))
    w = np.asarray(w, dtype=np.float64)
    return w / w.max(), np.asarray(lengths, float), np.asarray(fc, float), list(labels)



def _stats(samples):
    return dict(min=min(samples), median=statistics.median(samples))


def _peak_rss_mb() -> float:
    """Peak resident set size of *this* process (Linux: ru_maxrss is in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _current_rss_mb() -> float | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return float(line.split()[1]) / 1024.0
    except OSError:
        pass
    return None


def _versions(*mods):
    out = {}
    for m in mods:
        try:
            mod = __import__(m)
            out[m] = getattr(mod, "__version__", "?")
        except Exception:  # noqa: BLE001
            pass
    try:
        from importlib.metadata import version
        for dist in ("tvboptim", "tvb-library", "tvb-data", "jax"):
            try:
                out[dist] = version(dist)
            except Exception:  # noqa: BLE001
                pass
    except ImportError:  # pragma: no cover
        pass
    return out
