"""bench_fast_fit.py's cohort mode runs end to end (--tiny: 8 regions, 2 twins, a few TRs), and a cohort's
results carry what it cost (simulated hours per member, the batch's wall and CPU seconds)."""

import argparse
import json
import os
import subprocess
import sys

import numpy as np
import pytest

BENCHMARKS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "benchmarks")
BENCH = os.path.join(BENCHMARKS, "bench_fast_fit.py")
sys.path.insert(0, BENCHMARKS)
import fast_cohort  # noqa: E402


def test_cohort_mode_tiny_tunes_the_twins_in_one_batch_per_preset_and_scores_them(tmp_path):
    out, twins = tmp_path / "cohort.json", tmp_path / "twins.pkl"
    # one CPU device: the batch compiles faster unsharded (sharding is tested in test_cohort.py); the mode keeps
    # a device count the user set
    env = dict(os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS="--xla_force_host_platform_device_count=1")
    proc = subprocess.run([sys.executable, BENCH, "cohort", "--tiny", "--twins-file", str(twins), "--json", str(out)],
                          capture_output=True, text=True, env=env, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "| fast (Schirner2023Fast) | 2 |" in proc.stdout and "| faithful (Schirner2023) | 2 |" in proc.stdout
    res = json.loads(out.read_text())
    assert res["devices"] == 1
    assert res["twin"]["experiment"] == "Schirner2023"  # the twins' target FC is the faithful model's
    by_preset = {s["preset"]: s for s in res["summary"]}
    assert set(by_preset) == {"fast", "faithful"}
    for s in by_preset.values():
        assert s["members"] == 2 and s["devices"] == 1
        # the cohort's provenance: per member 20 FIC + 20 EIB TRs of tuning; the whole batch's CPU seconds
        np.testing.assert_allclose(s["simulated_tuning_h"], 40 * 720.0 / 3.6e6)
        assert 0 < s["provenance_cpu_s"] <= s["cpu_s"]
        np.testing.assert_allclose(s["subjects_per_cpu_hour"], 3600 * 2 / s["cpu_s"])
        np.testing.assert_allclose(s["subjects_per_wall_hour"], 3600 * 2 / s["wall_s"])
    rows = res["rows"]
    assert sorted((r["preset"], r["subject"]) for r in rows) == sorted(
        (p, f"dk_average-8-twin{k}") for p in ("fast", "faithful") for k in (0, 1))
    for r in rows:
        assert all(np.isfinite(r[k]) for k in ("fc_corr", "ceiling", "J_i_corr", "ratio_corr", "fc_corr_in_loop"))
        np.testing.assert_allclose(r["of_ceiling"], r["fc_corr"] / r["ceiling"])
    # one ceiling per twin, shared by both presets: the truth's own fit does not depend on who tunes
    ceilings = {(r["preset"], r["subject"]): r["ceiling"] for r in rows}
    assert all(ceilings["fast", s] == ceilings["faithful", s] for _, s in ceilings)
    # the twins file is read back as it was written; one made with other twin settings is refused
    base = fast_cohort.base_connectome(tiny=True)
    evaluation = (fast_cohort.TINY_TUNING["eval_ms"], fast_cohort.TINY_TUNING["eval_discard"])
    args = lambda n: argparse.Namespace(twins=n, twins_file=str(twins), workers=1)
    again = fast_cohort.cached_twins(args(2), base, fast_cohort.TINY_TWIN, evaluation)
    assert {t["twin"].name: t["ceiling"] for t in again} == {s: c for (p, s), c in ceilings.items() if p == "fast"}
    with pytest.raises(SystemExit, match="holds other twins"):
        fast_cohort.cached_twins(args(1), base, fast_cohort.TINY_TWIN, evaluation)


def test_joined_batches_keep_no_single_batchs_seconds():
    """Batches joined along ``subject`` (Dask workers' results) keep the shared provenance, simulated hours per
    member among it, but neither batch's wall nor CPU seconds: neither is the cohort's."""
    import xarray as xr

    from tvb_eib_plugin._cohorts.cohort import concat_subjects

    def batch(name, seconds):
        ds = xr.Dataset({"fc_corr": ("subject", [0.5])}, coords={"subject": [name]})
        tree = xr.DataTree.from_dict({"/": ds})
        tree.attrs.update(experiment="Schirner2023Fast", simulated_tuning_h=4.03, wall_time_s=seconds,
                          cpu_time_s=2 * seconds, subjects=name)
        return tree

    joined = concat_subjects([batch("sub-01", 10.0), batch("sub-02", 30.0)])
    assert list(joined["subject"].values) == ["sub-01", "sub-02"]
    assert joined.attrs["simulated_tuning_h"] == 4.03 and joined.attrs["experiment"] == "Schirner2023Fast"
    assert "wall_time_s" not in joined.attrs and "cpu_time_s" not in joined.attrs
