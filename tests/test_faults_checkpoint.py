"""Checkpoints are bound to their inputs (issue 12, part 2).

A fic_eib checkpoint resumes only the run that wrote it: another connectome
(weights, delays, labels), target FC, seed or pipeline before it is refused
before any compute, with the fix in the message; the same file under another
name is the same checkpoint; a cohort batch writes its own file; a corrupt
file is a clear error before the transient.  Small synthetic networks of 5
regions and runs of a few TRs.
"""

import dataclasses
import os
import zipfile

import numpy as np
import pytest

from tvb_eib_plugin._cohorts.cohort import tune_cohort
from tvb_eib_plugin._io.data import Connectome
from tvb_eib_plugin._experiments.experiment import run_experiment
from tvb_eib_plugin._experiments.stages import run_stages
from tvb_eib_plugin.routines.checkpoint import batch_path, read_checkpoint
from tvb_eib_plugin._validation import InputError

N = 5
# the reference pipeline with delays, a few TRs long: transient 10 TRs, FIC 10, FIC+EIB 30 (a chunk and a
# checkpoint every 10), evaluations of 10 TRs (one chunk length throughout: few compilations)
SHORT = dict(routines=("fic", "fic_eib"), delays=True, transient_ms=7200.0, eval_ms=7200.0, eval_discard=1,
             routine_settings={"fic": {"n_iterations": 10, "log_every": 10},
                               "fic_eib": {"n_iterations": 30, "window": 10, "log_every": 10,
                                           "checkpoint_every": 10, "eta_eib": 0.05}})
FIX = "remove the file"


def subject(seed: int = 0, name: str = "sub-00", **changes) -> Connectome:
    """A synthetic 5-region connectome with tract lengths and a target FC."""
    rng = np.random.default_rng(seed)
    w = rng.uniform(0.1, 1.0, (N, N))
    tl = rng.uniform(3.0, 20.0, (N, N))
    fc = np.corrcoef(rng.standard_normal((N, 40)))
    np.fill_diagonal(fc, 0.0)
    con = Connectome(labels=tuple(f"r{i}" for i in range(N)), weights=(w + w.T) * (1 - np.eye(N)) / 2,
                     tract_lengths=(tl + tl.T) / 2, fc_target=fc, name=name)
    return dataclasses.replace(con, **changes)


def _settings(path, **fic_eib):
    rs = {k: dict(v) for k, v in SHORT["routine_settings"].items()}
    rs["fic_eib"].update(checkpoint=os.fspath(path), **fic_eib)
    return dict(SHORT, routine_settings=rs)


def run(con, path, lines=None, **overrides):
    lines = [] if lines is None else lines
    settings = _settings(path) if path is not None else dict(SHORT)
    return run_experiment(connectome=con, log=lines.append, **{**settings, **overrides})


def refused(con, path, match, **overrides):
    """Run on ``con`` with the checkpoint at ``path``: refused with ``match`` and the fix, before the transient."""
    lines = []
    with pytest.raises(InputError, match=match) as err:
        run(con, path, lines, **overrides)
    assert FIX in str(err.value) and "another checkpoint path" in str(err.value)
    assert "  Simulation complete." not in lines  # nothing was computed
    return str(err.value)


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A checkpoint left by a finished run on subject(0) (its last state: a resume returns it as it is)."""
    path = tmp_path_factory.mktemp("ck") / "ck.npz"
    tree = run(subject(0), path)
    return path, tree


def test_a_checkpoint_is_refused_for_other_sc_weights(finished):
    path, _ = finished
    other = subject(0)
    w = other.weights.copy()
    w[0, 1] = w[1, 0] = w[0, 1] * 1.5
    message = refused(dataclasses.replace(other, weights=w), path, "SC weights")
    assert "target FC" not in message and "delays" not in message  # it names what differs, only that


def test_a_checkpoint_is_refused_for_other_tract_lengths(finished):
    path, _ = finished
    con = subject(0)
    tl = con.tract_lengths.copy()
    i, j = np.unravel_index(np.argmin(tl + 1e9 * np.eye(N)), tl.shape)
    tl[i, j] = tl[j, i] = tl.max()  # other delays, the same longest one (the same state shapes)
    message = refused(dataclasses.replace(con, tract_lengths=tl), path, "conduction delays")
    assert "SC weights" not in message
    refused(con, path, "conduction delays", delays=False)  # the run without delays is another run


def test_a_checkpoint_is_refused_for_other_region_labels(finished):
    path, _ = finished
    con = subject(0)
    refused(dataclasses.replace(con, labels=tuple(reversed(con.labels))), path, "region labels")


def test_a_checkpoint_is_refused_for_another_target_fc(finished):
    path, _ = finished
    con = subject(0)
    fc = con.fc_target.copy()
    fc[0, 2] = fc[2, 0] = 0.5 * fc[0, 2]
    refused(con, path, "target FC", fc_target=fc)


def test_a_checkpoint_is_refused_for_other_settings_of_the_routines_before(finished):
    path, _ = finished
    rs = _settings(path)["routine_settings"]
    rs["fic"]["n_iterations"] = 20  # another FIC before the same fic_eib
    refused(subject(0), path, "settings of the routines run before", routine_settings=rs)
    refused(subject(0), path, "transient length", transient_ms=14400.0)


class _Stop(Exception):
    pass


def test_the_same_file_under_another_name_is_the_same_checkpoint(tmp_path, monkeypatch):
    """Stopped at iteration 20 (its checkpoint at 10) under ``ck.npz``, resumed under ``./sub/../ck.npz``
    and then through a symlink: the resumed run equals the unbroken one, bit for bit."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sub").mkdir()
    con = subject(0)
    whole = run(con, None)

    def stop(line):
        if line.startswith("  20/30: fc_corr"):
            raise _Stop()

    with pytest.raises(_Stop):
        run_experiment(connectome=con, log=stop, **_settings("ck.npz"))
    lines = []
    resumed = run(con, "./sub/../ck.npz", lines)
    real = os.path.realpath(tmp_path / "ck.npz")
    assert any(f"resuming from {real}: stage 1, 10 iterations into it" in x for x in lines)
    for var in ("J_i", "wLRE", "wFFI"):
        np.testing.assert_array_equal(resumed["fic_eib"][var], whole["fic_eib"][var])
    np.testing.assert_array_equal(resumed["fic_eib/history"]["fc_corr"], whole["fic_eib/history"]["fc_corr"])
    os.symlink(tmp_path / "ck.npz", tmp_path / "link.npz")
    lines = []
    run(con, str(tmp_path / "link.npz"), lines)
    assert any("resuming" in x and "stage 2" in x for x in lines)  # the finished run's file, through the link
    assert os.path.islink(tmp_path / "link.npz")  # written through, not replaced by a file
    assert sorted(os.listdir(tmp_path)) == ["ck.npz", "link.npz", "sub"]  # no temporary file left


@pytest.fixture(scope="module")
def cohort_a(tmp_path_factory):
    """A cohort of one subject, sub-a, given the checkpoint path ``ck.npz``, run to its end."""
    path = tmp_path_factory.mktemp("cohort") / "ck.npz"
    tune_cohort(subjects=[subject(0, "sub-a")], log=None, **_settings(path))
    return path


def test_cohort_batches_write_their_own_checkpoints_and_never_resume_another_subjects(cohort_a):
    """A second cohort given the same path: its batch writes its own file, named after its members,
    and its subject is tuned from its own start (as without a checkpoint)."""
    b = subject(1, "sub-b", tract_lengths=subject(0).tract_lengths)  # sub-a's delays: the same compilation
    tree = tune_cohort(subjects=[b], log=None, **_settings(cohort_a))
    assert sorted(os.listdir(cohort_a.parent)) == ["ck.sub-a.seed0.npz", "ck.sub-b.seed0.npz"]
    alone = tune_cohort(subjects=[b], log=None, **SHORT)
    for var in ("J_i", "wLRE", "wFFI"):
        np.testing.assert_array_equal(tree["fic_eib"][var], alone["fic_eib"][var])
    # a batch of many members: one file bound to all of them, its name unique to the members
    many = batch_path(cohort_a, ["sub-a", "sub-b"], (0, 1))
    assert many.startswith(str(cohort_a.parent / "ck.sub-a+3."))
    assert many != batch_path(cohort_a, ["sub-a", "sub-c"], (0, 1)) != batch_path(cohort_a, ["sub-a", "sub-b"], (0, 2))


def test_a_batch_checkpoint_is_refused_for_other_seeds(cohort_a):
    """A batch's fingerprint holds each member's seed: sub-a's file of seed 0, given to a batch of sub-a
    with seed 1 (the routines' own seed setting the same, 0), is refused before any compute."""
    from tvb_eib_plugin._simulation.batch import stack_models
    from tvb_eib_plugin._experiments.experiment import ExperimentSettings, configure_routines, prepare_inputs

    settings = ExperimentSettings().replace(**_settings(cohort_a.parent / "ck.sub-a.seed0.npz"))
    net, fc, labels, _, _ = prepare_inputs(settings, subject(0, "sub-a"), None, None, None)
    lines = []
    with pytest.raises(InputError, match=r"noise seed\(s\) of batch member\(s\) \[0\]"):
        run_stages(settings, stack_models([net]), fc[None], configure_routines(settings), lines.append,
                   seeds=(1,), labels=labels)
    assert "  Simulation complete." not in lines


def _truncated(data: bytes) -> bytes:
    return data[:len(data) // 2]


def _noise(n: int) -> bytes:
    return np.random.default_rng(0).integers(0, 256, n, dtype=np.uint8).tobytes()


def _garbled(data: bytes, path) -> bytes:
    """The arrays' bytes overwritten, the archive's directory intact (caught by the CRC check)."""
    end = zipfile.ZipFile(path).start_dir
    return data[:100] + _noise(end - 200) + data[end - 100:]


def _headerless(data: bytes, path) -> bytes:
    src = zipfile.ZipFile(path)
    out = path.parent / "headerless.npz"
    with zipfile.ZipFile(out, "w") as z:
        for item in src.namelist():
            if item != "header.npy":
                z.writestr(item, src.read(item))
    return out.read_bytes()


@pytest.mark.parametrize("corrupt", ["truncated", "garbled arrays", "random bytes", "no header", "empty"])
def test_a_corrupt_checkpoint_is_a_clear_error_before_any_compute(finished, tmp_path, corrupt):
    path, _ = finished
    data = path.read_bytes()
    bad = {"truncated": lambda: _truncated(data), "garbled arrays": lambda: _garbled(data, path),
           "random bytes": lambda: _noise(len(data)), "no header": lambda: _headerless(data, path),
           "empty": lambda: b""}[corrupt]()
    target = tmp_path / "ck.npz"
    target.write_bytes(bad)
    refused(subject(0), target, "cannot be read as a tuning checkpoint")
    with pytest.raises(InputError, match="cannot be read"):
        read_checkpoint(target)
