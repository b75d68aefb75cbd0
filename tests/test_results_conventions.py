"""Results files follow CF attribute conventions that plain xarray understands (issue 15).

Every variable and coordinate has ``long_name``; quantities have ``units`` ("1" when dimensionless, ms
for times); labels and indices have no ``units`` at all; the schedule stage stays an integer, thinned or
not; and ``.plot()`` in plain xarray labels its axes from those attributes.  The file is read in a
subprocess that never imports the package, as a collaborator without it would.
"""

import json
import subprocess
import sys

import numpy as np
import pytest
import xarray as xr

from tvb_eib_plugin._io.data import Connectome
from tvb_eib_plugin._experiments.experiment import run_experiment
from tvb_eib_plugin._io.results import VARIABLES, _annotate, save_results
from tvb_eib_plugin.routines.loop import _thinned
from tvb_eib_plugin.routines.schedule import EIBStage

N = 4
RNG = np.random.default_rng(0)
W = RNG.uniform(0.2, 1.0, (N, N)) * (1 - np.eye(N))
FC = np.corrcoef(RNG.normal(size=(N, 50)))
#: labels and indices: they must carry no units attribute (not even an empty one)
UNITLESS = {"region", "region_j", "iteration", "step", "stage"}


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A 4-region FIC + two-stage FIC+EIB run, its history thinned to every 5th iteration, saved."""
    schedule = (EIBStage(10, 0.005, 10), EIBStage(20, 0.0025, 10))
    tree = run_experiment(
        connectome=Connectome(labels=tuple(f"r{i}" for i in range(N)), weights=W, fc_target=FC, name="toy"),
        transient_ms=32400.0, eval_ms=36000.0, log=None, routines=("fic", "fic_eib"),
        routine_settings={"fic": {"n_iterations": 20},
                          "fic_eib": {"schedule": schedule, "log_every": 10, "record_every": 5}})
    return tree, save_results(tree, tmp_path_factory.mktemp("cf") / "results.nc")


#: runs with plain xarray + matplotlib and prints what it found as JSON
PLAIN = r"""
import json, sys
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np, xarray as xr

tree = xr.open_datatree(sys.argv[1])
found = {}
for node in tree.subtree:
    ds = node.to_dataset(inherit=False)
    for name, var in ds.variables.items():
        found[f"{node.path}:{name}"] = dict(attrs={k: str(v) for k, v in var.attrs.items()}, dtype=var.dtype.kind)
mesh = tree["fic_eib"].wLRE.plot()
plt.figure()
line = tree["fic_eib/history"].fc_corr.plot()[0]
stage = tree["fic_eib/history"].stage
print(json.dumps(dict(
    found=found,
    wLRE=[mesh.axes.get_xlabel(), mesh.axes.get_ylabel(), mesh.colorbar.ax.get_ylabel()],
    fc_corr=[line.axes.get_xlabel(), line.axes.get_ylabel()],
    stage=stage.values.tolist(), imported=sorted(m for m in sys.modules if m.startswith("tvb_eib_plugin")))))
"""


@pytest.fixture(scope="module")
def plain(saved):
    out = subprocess.run([sys.executable, "-c", PLAIN, str(saved[1])], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_the_file_is_read_without_the_package(plain):
    assert plain["imported"] == []
    groups = {key.split(":")[0] for key in plain["found"]}
    assert {"/", "/fic/history", "/fic_eib/history", "/fic_eib/evaluation"} <= groups


def test_every_variable_has_long_name_and_units_only_where_it_is_a_quantity(plain):
    found = plain["found"]
    assert {key.split(":")[1] for key in found} <= set(VARIABLES)  # no name left to the fallback
    for key, var in found.items():
        name, attrs = key.split(":")[1], var["attrs"]
        assert attrs.get("long_name"), key
        assert attrs.get("description"), key  # the longer meaning, which tutorials and users read
        if name in UNITLESS:
            assert "units" not in attrs, f"{key}: a label or index has units {attrs['units']!r}"
        else:
            assert attrs.get("units"), f"{key}: a quantity without units"
    for key, var in found.items():
        if key.split(":")[1] in ("time", "bold_time"):
            assert var["attrs"]["units"] == "ms", key
    assert found["/fic_eib:J_i"]["attrs"]["units"] == "nA"
    assert found["/fic_eib:wLRE"]["attrs"]["units"] == "1"


def test_plain_xarray_plots_are_labelled_from_long_name_and_units(plain):
    # xarray wraps labels longer than 30 characters onto two lines
    plain = {k: [" ".join(label.split()) for label in plain[k]] for k in ("wLRE", "fc_corr")}
    assert plain["wLRE"] == ["sending region", "receiving region", "long-range excitation scaling [1]"]
    assert plain["fc_corr"] == ["tuning iteration", "FC correlation (simulated vs target) [1]"]


def test_the_thinned_schedule_stage_stays_an_integer(saved, plain):
    tree = saved[0]
    h = tree["fic_eib/history"]
    assert np.issubdtype(h.stage.dtype, np.integer)
    # records every 5 iterations: 10 iterations of stage 0, then 20 of stage 1
    assert h.iteration.values.tolist() == [5, 10, 15, 20, 25, 30]
    assert h.stage.values.tolist() == [0, 0, 1, 1, 1, 1] == plain["stage"]
    assert plain["found"]["/fic_eib/history:stage"]["dtype"] == "i"
    assert h.fc_corr.dtype == np.float64


def test_thinning_keeps_an_integer_block_s_last_value_and_float_means_unchanged():
    rng = np.random.default_rng(1)
    rec = {"stage": np.array([0, 0, 0, 1, 1, 1, 1, 2, 2], np.int32),
           "fc_corr": rng.normal(size=9).astype(np.float32), "J_i": rng.normal(size=(9, 3))}
    out = _thinned(rec, 4, done=8)
    assert out["stage"].dtype == np.int32 and out["stage"].tolist() == [1, 2, 2]  # not 0.25, 1.75
    assert out["iteration"].tolist() == [12, 16, 17]
    for k in ("fc_corr", "J_i"):  # exactly the block means (the same reductions as before)
        expected = np.stack([rec[k][a:b].mean(axis=0) for a, b in [(0, 4), (4, 8), (8, 9)]])
        assert out[k].dtype == expected.dtype and np.array_equal(out[k], expected)


def test_an_unlisted_variable_gets_a_long_name_but_no_made_up_units():
    ds = _annotate(xr.Dataset({"something_new": ("x", [1.0, 2.0])}))
    assert ds.something_new.attrs["long_name"] == "something_new" and "units" not in ds.something_new.attrs
