import warnings

import pytest

warnings.filterwarnings("ignore", message="Geodesic distance module is unavailable")

import tvb_eib_plugin as eib  # noqa: E402  (enables float64 before any test builds arrays)


@pytest.fixture(scope="session")
def dk():
    """The shipped reference connectome with its target FC."""
    return eib.load_dataset("dk_average")


@pytest.fixture(scope="session")
def conn76():
    """tvb-data's connectivity_76 as a configured TVB Connectivity."""
    return eib.tvb_connectivity("connectivity_76")
