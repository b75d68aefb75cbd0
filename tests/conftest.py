import warnings

import pytest

warnings.filterwarnings("ignore", message="Geodesic distance module is unavailable")

import jax  # noqa: E402

import tvb_eib_plugin as eib  # noqa: E402

# The tests compare with float64 references in raw jnp code too; the package itself only asks for float64
# where it builds or scores a model (tests/test_public_api.py checks that in a fresh interpreter).
jax.config.update("jax_enable_x64", True)
from tvb_eib_plugin._validation import InputWarning  # noqa: E402


@pytest.fixture(autouse=True)
def _known_data_warnings():
    """connectivity_76's corpus callosum (rCC, lCC) has no connections at all: a true property of tvb-data's
    data, warned about on every load and asserted in test_faults_data.py; not news in other tests.
    (A filter at import time would not last: pytest restores the filters after collecting.)"""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Geodesic distance module is unavailable")  # TVB, imported late
        warnings.filterwarnings("ignore", message=r".*isolated region\(s\).*\['rCC', 'lCC'\]",
                                category=InputWarning)
        yield


@pytest.fixture(scope="session")
def dk():
    """The shipped reference connectome with its target FC."""
    return eib.load_dataset("dk_average")


@pytest.fixture(scope="session")
def conn76():
    """tvb-data's connectivity_76 as a configured TVB Connectivity."""
    return eib.tvb_connectivity("connectivity_76")


@pytest.fixture(scope="session")
def reference():
    """The reference experiment (seed 0, float32, every setting of the spec) up to FIC+EIB, with its log:
    about 15 s, run once for test_experiment.py and test_pinned.py."""
    from tvb_eib_plugin._experiments.experiment import run_experiment

    lines = []
    tree = run_experiment("EI_Tuning_FIC_EIB_Optimization", routines=("fic", "fic_eib"), seed=0, log=lines.append)
    return tree, lines


@pytest.fixture
def feed_tvb_noise(monkeypatch):
    """``feed(z, sigma)`` makes TVB's Additive noise return our increments ``z = (z_e, z_i)``, each
    (steps, N): TVB draws ``generate(shape) = sqrt(dt) N(0, 1)`` once per step and multiplies it by
    ``gfun = sqrt(2 nsig)``, so it is handed z / sigma step by step, shaped (2, N, 1).  Returns the
    list of calls TVB made, to check it drew exactly one row per step."""
    import numpy as np
    from tvb.simulator import noise

    def feed(z, sigma):
        rows = iter(np.stack([np.asarray(z[0]) / sigma[0], np.asarray(z[1]) / sigma[1]], axis=1)[..., None])
        calls = []

        def generate(self, shape, lo=-1.0, hi=1.0):
            calls.append(shape)
            return next(rows).copy()

        monkeypatch.setattr(noise.Additive, "generate", generate)
        return calls

    return feed
