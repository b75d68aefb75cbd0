"""Every tutorial runs end to end in its --quick mode and writes its figures (about 5 minutes in all on 2 cores)."""

import os
import pathlib
import subprocess
import sys

import pytest

TUTORIALS = sorted((pathlib.Path(__file__).resolve().parent.parent / "tutorials").glob("[0-9][0-9]_*.py"))


def test_the_tutorials_are_there():
    assert [p.name[:2] for p in TUTORIALS] == ["01", "02", "03", "04", "05", "06", "07"]


@pytest.mark.slow
@pytest.mark.parametrize("script", TUTORIALS, ids=[p.stem for p in TUTORIALS])
def test_tutorial_runs_quick_and_writes_figures(script, tmp_path):
    out = tmp_path / "out"
    env = dict(os.environ, MPLBACKEND="Agg")
    proc = subprocess.run([sys.executable, str(script), "--quick", "--out", str(out)], capture_output=True,
                          text=True, timeout=600, env=env, cwd=tmp_path)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"{script.name} exited with {proc.returncode}:\n{log[-6000:]}"
    pngs = sorted(out.glob("*.png"))
    assert pngs, f"{script.name} wrote no PNG into {out}:\n{log[-3000:]}"
    assert all(p.stat().st_size > 10_000 for p in pngs), [(p.name, p.stat().st_size) for p in pngs]
    assert "Traceback" not in log
