"""The public namespace: ``import tvb_eib_plugin as eib`` is the one import line a user needs.

What is public is ``eib.__all__`` plus the TVB boundary ``eib.tvb``; each public name is the
submodule's own object (no copies), the submodule import paths keep working, the ``tvb``
submodule does not shadow TVB's own ``tvb`` package, and importing the package loads
neither matplotlib nor Dask (they are imported where they are used).
"""

import pathlib
import subprocess
import sys

import numpy as np
import pytest

import tvb_eib_plugin as eib
from tvb_eib_plugin.tvb import _adapters as adapters, _export as tvb_export
from tvb_eib_plugin._simulation import batch
from tvb_eib_plugin._cohorts import cohort, distributed
from tvb_eib_plugin._experiments import experiment
from tvb_eib_plugin._io import plot, results
from tvb_eib_plugin import routines
from tvb_eib_plugin._validation import InputError

N = 4
LABELS = tuple(f"r{i}" for i in range(N))
# The same names as the README's tour, each the submodule's object (re-exported, not wrapped or copied).
TOP = {
    "run_experiment": experiment.run_experiment, "EXPERIMENTS": experiment.EXPERIMENTS,
    "get_experiment": experiment.get_experiment, "tune_cohort": cohort.tune_cohort,
    "tune_cohort_distributed": distributed.tune_cohort_distributed, "use_host_devices": batch.use_host_devices,
    "save_results": results.save_results, "load_results": results.load_results,
    "tuned_model": results.tuned_model, "results_figure": plot.results_figure,
    "FIC": routines.FIC, "FICEIB": routines.FICEIB, "GradientEIB": routines.GradientEIB,
    "GlobalCoupling": routines.GlobalCoupling,
}
TVB = {
    "from_simulator": adapters.network_from_simulator, "to_simulator": tvb_export.tvb_simulator,
    "from_connectivity": adapters.network_from_tvb, "to_connectivity": tvb_export.tvb_connectivity_from,
    "connectivity": adapters.tvb_connectivity, "connectome_from_tvb": adapters.connectome_from_tvb,
    "history_from_tvb": adapters.initial_state_from_tvb, "history_to_tvb": tvb_export.tvb_initial_conditions,
    "model_to_tvb": tvb_export.tvb_model, "coupling_to_tvb": tvb_export.tvb_coupling,
    "integrator_from_tvb": adapters.heun_from_tvb, "bold_from_tvb": adapters.bold_from_tvb,
}


@pytest.mark.parametrize("module", [eib, eib.tvb], ids=["eib", "eib.tvb"])
def test_every_name_in_all_resolves_once(module):
    assert len(module.__all__) == len(set(module.__all__))
    missing = [name for name in module.__all__ if not hasattr(module, name)]
    assert missing == []


def test_the_product_is_at_the_top_level_as_the_submodules_own_objects():
    assert [name for name, obj in TOP.items() if getattr(eib, name) is not obj] == []
    assert set(TOP) <= set(eib.__all__)


def test_the_tvb_boundary_is_one_module_of_symmetric_re_exports():
    assert set(eib.tvb.__all__) == set(TVB)
    assert [name for name, obj in TVB.items() if getattr(eib.tvb, name) is not obj] == []


def test_the_boundary_module_does_not_shadow_tvb_itself():
    import tvb
    import tvb.simulator

    assert eib.tvb is sys.modules["tvb_eib_plugin.tvb"] and sys.modules["tvb"] is tvb
    assert tvb is not eib.tvb and tvb.simulator.__name__ == "tvb.simulator"
    # the plugin's own absolute imports of TVB still reach TVB: a TVB model object comes back
    assert type(eib.tvb.model_to_tvb(eib.network_from_connectome(_connectome(), delays=False))).__module__ \
        .startswith("tvb.simulator")


def test_a_star_import_gives_all_and_leaves_a_users_tvb_alone():
    import tvb

    namespace = {"tvb": tvb}
    exec("from tvb_eib_plugin import *", namespace)
    assert namespace["tvb"] is tvb
    assert {k for k in namespace if k not in ("tvb", "__builtins__")} == set(eib.__all__)


def test_old_import_paths_still_work():
    from tvb_eib_plugin import network_from_tvb, tvb_connectivity  # noqa: F401  (kept for existing code)
    from tvb_eib_plugin._experiments.experiment import run_experiment
    from tvb_eib_plugin.tvb._export import tvb_simulator

    assert run_experiment is eib.run_experiment and tvb_simulator is eib.tvb.to_simulator
    assert network_from_tvb is eib.tvb.from_connectivity and tvb_connectivity is eib.tvb.connectivity


def test_lazy_names_import_on_first_use_and_matplotlib_and_dask_only_in_their_calls():
    """A fresh interpreter: the package alone loads no xarray (experiments and results come on first use), and
    even then neither matplotlib nor Dask, which results_figure and tune_cohort_distributed import when called."""
    heavy = "('xarray', 'tvb_eib_plugin._experiments.experiment', 'tvb_eib_plugin._io.results', 'matplotlib', 'dask')"
    code = (f"import sys, tvb_eib_plugin as eib; loaded = lambda: [m for m in {heavy} if m in sys.modules]; "
            "print(loaded()); eib.run_experiment; print(loaded()); "
            "eib.results_figure, eib.tune_cohort_distributed; print(loaded())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split("\n")[:3] == ["[]", "['xarray', 'tvb_eib_plugin._experiments.experiment', 'tvb_eib_plugin._io.results']",
                                           "['xarray', 'tvb_eib_plugin._experiments.experiment', 'tvb_eib_plugin._io.results']"]


def test_dir_lists_the_lazy_names_and_unknown_names_still_fail():
    assert set(eib.__all__) <= set(dir(eib))
    with pytest.raises(AttributeError, match="no attribute 'run_experimnet'"):
        eib.run_experimnet


def test_distributed_without_dask_names_the_extra_to_install(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "dask.distributed", None)  # `from dask.distributed import ...` fails
    with pytest.raises(InputError, match=r"pip install 'tvb-eib-plugin\[cluster\]'"):
        eib.tune_cohort_distributed(subjects=[_connectome()], out_dir=tmp_path, log=None)


def _connectome() -> "eib.Connectome":
    rng = np.random.default_rng(0)
    w = rng.uniform(0.2, 1.0, (N, N))
    fc = np.corrcoef(rng.standard_normal((N, 60)))
    return eib.Connectome(labels=LABELS, weights=(w + w.T) * (1 - np.eye(N)), fc_target=0.5 * (fc + fc.T),
                          name="toy")


def test_the_tour_runs_on_one_import_line(tmp_path):
    """Tune, save, load, get the tuned model back and hand it to TVB's own Simulator, all as ``eib.*``."""
    con = _connectome()
    tree = eib.run_experiment(connectome=con, routines=("fic",), transient_ms=7200.0, eval_ms=7200.0,
                              eval_discard=1, log=None, routine_settings={"fic": {"n_iterations": 10}})
    path = eib.save_results(tree, tmp_path / "results.nc")
    loaded = eib.load_results(path)
    net = eib.network_from_connectome(con, delays=False)
    tuned = eib.tuned_model(loaded, "fic", net)
    np.testing.assert_array_equal(np.asarray(tuned.node.J_i), loaded["fic"].J_i.values)
    assert not np.array_equal(np.asarray(tuned.node.J_i), np.asarray(net.node.J_i))  # FIC moved J_i
    sim = eib.tvb.to_simulator(tuned, con.labels, deterministic=True, simulation_length=20.0)
    assert type(sim).__module__ == "tvb.simulator.simulator"
    assert eib.tvb.history_to_tvb(tuned, eib.initial_state(tuned)).shape == (1, 2, N, 1)


X64 = """
import logging, jax
logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
import tvb_eib_plugin as eib
print("import", jax.config.read("jax_enable_x64"))
x = jax.numpy.ones(3)                                  # the user's own arrays before: float32, kept so
net = eib.network_from_connectome(eib.load_dataset("dk_average"), delays=False)
print("network", jax.config.read("jax_enable_x64"), net.dtype, x.dtype)
"""


def test_importing_leaves_jax_alone_and_building_a_network_asks_for_float64_saying_so():
    out = subprocess.run([sys.executable, "-c", X64], capture_output=True, text=True, check=True)
    printed = [ln for ln in out.stdout.split("\n") if ln.startswith(("import", "network"))]
    assert printed == ["import False", "network True float64 float32"]
    assert "enabling JAX's float64 support" in out.stderr + out.stdout  # said once, on the package's logger


#: The layers in the order of docs/architecture.md's tree: each may import only itself and those before it.
LAYERS = ("_x64", "_precision", "_validation", "_outputs", "_model", "_simulation", "routines", "_io", "tvb", "_experiments",
          "_cohorts", "_cli")
#: The one import against that order, function-local: reading a TVB zip needs TVB's adapters.
LAYER_EXCEPTIONS = {("_io/data.py", "tvb._adapters")}


def _relative_imports(path: pathlib.Path, package: pathlib.Path):
    """(imported module, dotted within the package) of every relative import in ``path``."""
    import ast

    parts = list(path.relative_to(package).with_suffix("").parts)
    here = parts[:-1]  # the package the module is in (an __init__'s too: its last part is "__init__")
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = here[:len(here) - (node.level - 1)]
            names = [node.module] if node.module else [a.name for a in node.names]
            for name in names:
                yield ".".join(base + name.split("."))


def test_layers_import_only_the_layers_above_them():
    package = pathlib.Path(eib.__file__).parent
    rank = {name: i for i, name in enumerate(LAYERS)}
    rank.update(_x64=0, _precision=0, _validation=0, _outputs=0)  # the foundation: none of them imports the others' layers
    wrong = []
    for path in sorted(package.rglob("*.py")):
        where = path.relative_to(package).as_posix()
        if where in ("__init__.py", "__main__.py"):
            continue  # the public face imports every layer; `python -m tvb_eib_plugin` runs the CLI
        mine = where.split("/")[0].removesuffix(".py")
        for target in _relative_imports(path, package):
            layer = target.split(".")[0]
            if layer in rank and rank[layer] > rank[mine] and (where, target) not in LAYER_EXCEPTIONS:
                wrong.append(f"{where} imports {target}")
    assert not wrong, "imports against docs/architecture.md's layer order:\n" + "\n".join(wrong)
    assert set(p.name for p in package.iterdir() if p.is_dir() and not p.name.startswith(("__", "shipped"))) \
        == {n for n in LAYERS if not n.endswith(("x64", "precision", "validation", "outputs"))}, "a folder the layer order misses"
