"""Cohorts past one machine: batches of subjects on Dask distributed workers.

``tune_cohort_distributed`` cuts a cohort into batches of subjects, and each
batch is one :func:`cohort.tune_cohort` call (one compiled, batched run) on
a Dask worker.  Dask schedules the batches, reruns a batch whose worker died
and retries one that raised (``retries``); this module only splits, writes and
joins.  Each finished subject is written to ``out_dir/<subject>.nc`` as its
batch comes back, so a stopped run, started again with the same arguments,
tunes only the subjects still missing.  The result is one DataTree stacked
along ``subject``, as :func:`cohort.tune_cohort` returns.

The cluster: a user's ``client`` (any ``dask.distributed.Client``), a
scheduler ``address``, or by default a ``LocalCluster`` of ``n_workers``
single-threaded worker processes started for the call and closed after it.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
import warnings
from typing import Callable, Sequence

import xarray as xr

from .cohort import check_subjects, cohort_routines, cohort_settings, concat_subjects, tune_cohort
from .._io.data import Connectome
from .._experiments.experiment import ExperimentSettings
from .._outputs import check_folder, write_atomic
from ..routines.progress import log_info
from .._io.results import load_results, save_results
from .._validation import InputError

MANIFEST = "cohort.json"


class IncompleteSubjectWarning(UserWarning):
    """A subject's file in ``out_dir`` does not hold its finished results; the subject is tuned again."""


def subject_file(out_dir: str | os.PathLike, name: str) -> str:
    """Where a finished subject's results are written."""
    return os.path.join(os.fspath(out_dir), re.sub(r"[^\w.-]", "_", name) + ".nc")


def check_file_names(out_dir: str | os.PathLike, names: Sequence[str]) -> None:
    """Refuse subjects whose result files would be one file (names that differ only in characters a file name
    cannot hold, or only in case, which a macOS or Windows disk does not tell apart)."""
    seen: dict[str, str] = {}
    for name in names:
        path = subject_file(out_dir, name)
        key = os.path.normcase(path).lower()
        if key in seen:
            raise InputError(f"subjects {seen[key]!r} and {name!r} would both be written to {path}; give them "
                             "names that differ in letters, digits, '.', '-' or '_' (Connectome name)")
        seen[key] = name


def finished_subject(path: str, name: str, stages: Sequence[str]) -> bool:
    """Whether ``path`` holds subject ``name``'s finished results (every stage's parameters and evaluation).

    A file that is there but does not open, or lacks any of it, is warned about
    (:class:`IncompleteSubjectWarning`) and counts as not done: its subject is tuned again.
    """
    if not os.path.exists(path):
        return False
    try:
        problem = _incomplete(load_results(path), name, stages)
    except Exception as err:  # a damaged file raises whatever its netCDF / HDF5 reader does
        problem = f"it does not open ({type(err).__name__}: {err})"
    if problem:
        warnings.warn(f"{path}: {problem}; tuning subject {name!r} again", IncompleteSubjectWarning, stacklevel=3)
        return False
    return True


def _incomplete(tree: xr.DataTree, name: str, stages: Sequence[str]) -> str | None:
    if tree.attrs.get("status") == "failed":
        return "it holds a run that failed"
    if "subject" not in tree.coords or [str(s) for s in tree["subject"].values] != [name]:
        return "it holds other subjects' results"
    for stage in stages:
        node = tree.children.get(stage)
        if node is None or not {"J_i", "wLRE", "wFFI"} <= set(node.data_vars):
            return f"it has no complete stage {stage!r}"
        if "evaluation" not in node.children or "fc_corr" not in node["evaluation"].data_vars:
            return f"it has no evaluation of stage {stage!r}"
    return None


def tune_batch(settings: ExperimentSettings, subjects: list[Connectome], seeds: tuple[int, ...]) -> xr.DataTree:
    """One batch, as a worker runs it: :func:`cohort.tune_cohort` without a log."""
    logging.getLogger("distributed").setLevel(logging.WARNING)  # TVB's logging setup lets INFO through
    return tune_cohort(settings, subjects, seeds=seeds, log=None)


def tune_cohort_distributed(
    experiment: str | ExperimentSettings = "EI_Tuning_FIC_EIB_Optimization",
    subjects: Sequence[Connectome | str] = (),
    *,
    out_dir: str | os.PathLike,
    seeds: Sequence[int] = (0,),
    batch_size: int = 4,
    client=None,
    address: str | None = None,
    n_workers: int = 2,
    retries: int = 2,
    log: Callable[[str], None] | None = log_info,
    variant: str | None = None,
    **overrides,
) -> xr.DataTree:
    """Tune a cohort in batches on Dask workers; finished subjects are written to ``out_dir`` as they come.

    Args:
        experiment, subjects, seeds, variant, overrides: as :func:`cohort.tune_cohort`.
        out_dir: folder of the per-subject results (and a manifest of the run's
            settings); subjects already there are not tuned again.
        batch_size: subjects per batch (each batch is one batched run on one worker).
        client: a ``dask.distributed.Client`` to use; or ``address``: a scheduler to connect to;
            neither: a LocalCluster of ``n_workers`` processes for this call.
        retries: extra attempts for a batch that raised (a batch whose worker died
            is rerun by the scheduler in any case).

    Returns the cohort's DataTree (every subject, in the order given).
    """
    try:
        from dask.distributed import Client, LocalCluster, as_completed
    except ImportError:  # pragma: no cover - depends on the environment
        raise InputError("distributed tuning needs Dask: pip install 'tvb-eib-plugin[cluster]'") from None
    log = log or (lambda _: None)
    settings = cohort_settings(experiment, variant, **overrides)
    subjects = check_subjects(subjects)
    routines = cohort_routines(settings)  # a plan that cannot run fails here, not on every worker
    seeds = tuple(int(k) for k in seeds)
    if batch_size < 1:
        raise InputError(f"batch_size must be >= 1, got {batch_size}")
    check_folder(out_dir, "out_dir")
    check_file_names(out_dir, [s.name for s in subjects])
    _claim(out_dir, settings, seeds)
    stages = ["integration"] + [r.name for r in routines]
    todo = [s for s in subjects if not finished_subject(subject_file(out_dir, s.name), s.name, stages)]
    batches = [todo[i:i + batch_size] for i in range(0, len(todo), batch_size)]
    log(f"Cohort of {len(subjects)} subject(s) x {len(seeds)} seed(s): {len(subjects) - len(todo)} already in "
        f"{out_dir}, {len(todo)} to tune in {len(batches)} batch(es) of up to {batch_size}")
    if batches:
        # TVB's logging setup lets Dask's INFO lines through; the batch lines are the progress here
        quiet, level = logging.getLogger("distributed"), logging.getLogger("distributed").level
        quiet.setLevel(logging.WARNING)
        own_cluster = own_client = None
        if client is None:
            own_cluster = None if address else LocalCluster(n_workers=n_workers, threads_per_worker=1,
                                                              processes=True, dashboard_address=":0",
                                                              silence_logs=logging.WARNING)
            client = own_client = Client(address or own_cluster)
        try:
            _run_batches(client, as_completed, settings, batches, seeds, retries, out_dir, log)
        finally:
            if own_client is not None:  # a user's client, and the cluster behind an address, stay up
                own_client.close()
            if own_cluster is not None:
                own_cluster.close()
            quiet.setLevel(level)
    return concat_subjects([load_results(subject_file(out_dir, s.name)) for s in subjects])


def _run_batches(client, as_completed, settings, batches, seeds, retries, out_dir, log) -> None:
    started = time.perf_counter()
    futures = {client.submit(tune_batch, settings, batch, seeds, retries=retries, pure=False,
                             key=f"tvb-eib-batch-{i}-{batch[0].name}"): batch
               for i, batch in enumerate(batches)}
    finished = 0
    for future in as_completed(futures):
        tree = future.result()
        for con in futures[future]:  # written whole or not at all; replaces an incomplete file of a run before
            save_results(tree.sel(subject=[con.name]), subject_file(out_dir, con.name), overwrite=True)
        finished += len(futures[future])
        fits = tree[list(tree.children)[-1]]["evaluation"]["fc_corr"].values
        log(f"  batch of {[c.name for c in futures[future]]} written ({finished} subjects done, "
            f"{time.perf_counter() - started:.0f} s; last stage fc_corr {fits.mean():.4f})")


def _claim(out_dir, settings: ExperimentSettings, seeds: tuple[int, ...]) -> None:
    """Write the run's manifest to ``out_dir``, or check that the one there is this run's."""
    os.makedirs(os.fspath(out_dir), exist_ok=True)
    path = os.path.join(os.fspath(out_dir), MANIFEST)
    manifest = json.loads(json.dumps(dict(settings=settings.record(), seeds=list(seeds)), default=str))
    if os.path.exists(path):
        with open(path) as f:
            found = json.load(f)
        if found != manifest:
            changed = sorted(k for k in set(found["settings"]) | set(manifest["settings"])
                             if found["settings"].get(k) != manifest["settings"].get(k))
            if found["seeds"] != manifest["seeds"]:
                changed.append("seeds")
            raise InputError(f"{out_dir} holds a cohort run with other settings ({changed}); "
                             "use another out_dir or the same settings")
        return

    def dump(tmp):
        with open(tmp, "w") as f:
            json.dump(manifest, f, indent=1)

    write_atomic(path, dump)  # a run stopped while writing leaves no torn manifest to trip the next one
