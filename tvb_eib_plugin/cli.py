"""The ``tvb-eib`` command.

    tvb-eib run [--experiment NAME] [--connectivity SRC] [--fc FILE] [-o results.nc] [--figure fig.png] ...
    tvb-eib cohort SUBJECT [SUBJECT ...] [--seeds 0 1 ...] [--out-dir DIR] [-o cohort.nc] ...
    tvb-eib cohort --twins N [--twin-of dk_average] ...
    tvb-eib list

Exit status: 0 done; 2 bad input or usage (nothing computed); 3 the run diverged (saturated, NaN or runaway
weights): the stages finished before it are written to the output file, the failed one marked.
"""

from __future__ import annotations

import argparse
import os
import sys

EXIT_INPUT, EXIT_DIVERGED = 2, 3


def _parser() -> argparse.ArgumentParser:
    from tvb_eib_plugin import __version__

    p = argparse.ArgumentParser(prog="tvb-eib", description="FIC and EIB tuning of Wong-Wang brain network models")
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = p.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run a named experiment and write results.nc and a figure")
    _experiment_args(run)
    run.add_argument("--connectivity", help="data set name, BIDS relmat folder or TVB connectivity .zip "
                                            "(default: the experiment's, dk_average)")
    run.add_argument("--fc", help="target FC file (.npy/.csv/.tsv/.mat); default: the connectivity's own")
    run.add_argument("--seed", type=int, help="noise seed of the transient, routines and evaluations (default 0)")
    run.add_argument("-o", "--output", default="results.nc", help="results file (netCDF)")
    run.add_argument("--figure", default="results.png", help="figure file (PNG); '' to skip")
    _overwrite_arg(run)
    cohort = sub.add_parser("cohort", help="tune many subjects (x seeds) in one batched run, or on Dask workers")
    cohort.add_argument("subjects", nargs="*", help="subjects: BIDS relmat folders, TVB zips or data set names, "
                                                    "one parcellation, each with its FC")
    _experiment_args(cohort)
    cohort.add_argument("--twins", type=int, help="instead of subjects: this many twins of --twin-of (FC "
                                                   "simulated from a known truth), and a recovery report")
    cohort.add_argument("--twin-of", default="dk_average", help="connectivity the twins are made from")
    cohort.add_argument("--seeds", type=int, nargs="+", default=[0], help="noise seeds (each subject runs each)")
    cohort.add_argument("--out-dir", help="run on Dask: batches on workers, each subject written here as it "
                                          "finishes; a stopped run started again resumes")
    cohort.add_argument("--workers", type=int, default=2, help="LocalCluster workers with --out-dir (2)")
    cohort.add_argument("--scheduler", help="with --out-dir: a Dask scheduler address instead of a LocalCluster")
    cohort.add_argument("--batch-size", type=int, default=4, help="subjects per Dask batch (4)")
    cohort.add_argument("--host-devices", type=int, default=0,
                        help="without --out-dir, on a CPU: split it into this many JAX devices so the batch runs on "
                             "that many cores at once (default 0: one per core; 1: one device; a count already in "
                             "XLA_FLAGS is kept)")
    cohort.add_argument("-o", "--output", default="cohort.nc", help="results file (netCDF)")
    _overwrite_arg(cohort)
    sub.add_parser("list", help="list experiments, routines and data sets")
    show = sub.add_parser("show", help="print a results file's stages, their fit, settings and provenance")
    show.add_argument("results", help="a results file written by `tvb-eib run` (netCDF)")
    show.add_argument("--figure", help="also redraw its results figure into this PNG")
    show.add_argument("--overwrite", action="store_true", help="replace an existing --figure file")
    return p


def _overwrite_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--overwrite", action="store_true",
                   help="replace existing output files (default: refuse them before computing anything)")


def _experiment_args(p: argparse.ArgumentParser) -> None:
    """The experiment and its tuning settings, shared by ``run`` and ``cohort``."""
    p.add_argument("--experiment", default="EI_Tuning_FIC_EIB_Optimization",
                   help="EI_Tuning_FIC_EIB_Optimization (the reference workflow) or Schirner2023 (the paper's fit)")
    p.add_argument("--variant", help="a variant of the experiment (Schirner2023: EI, E or global)")
    p.add_argument("--routines", nargs="+", help="routines to run (dependencies are added)")
    p.add_argument("--fic-iterations", type=int, help="FIC iterations, one TR each (reference: 200)")
    p.add_argument("--eib-iterations", type=int, help="FIC+EIB iterations, one TR each, without --stages "
                                                        "(reference: 2000)")
    p.add_argument("--eib-window", type=int, help="BOLD samples in the FIC+EIB FC window (default 150)")
    p.add_argument("--stages", type=int, help="EIB in this many annealing stages (rate halving from "
                                              "--stage-eta, window doubling from --eib-window or 150)")
    p.add_argument("--stage-iterations", type=int, nargs="+",
                   help="TRs per annealing stage, or one number per stage (Schirner2023: 50000)")
    p.add_argument("--stage-eta", type=float, default=0.1, help="learning rate of the first stage (0.1)")
    p.add_argument("--checkpoint", help="fic_eib checkpoint file: written during the run, resumed from if present")
    p.add_argument("--gradient-steps", type=int, help="optimizer steps of gradient_eib (default 66)")
    p.add_argument("--gradient-ms", type=float, help="simulated ms per gradient loss evaluation (default 300000)")
    p.add_argument("--transient-ms", type=float, help="simulated before tuning, ms (reference: 300000)")
    p.add_argument("--eval-ms", type=float, help="length of each stage's evaluation simulation, ms "
                                                 "(reference: 300000)")
    p.add_argument("--delays", action=argparse.BooleanOptionalAction, default=None,
                   help="use conduction delays from tract lengths, or not (--no-delays); default: the experiment's "
                        "(EI_Tuning_FIC_EIB_Optimization: none, Schirner2023: delays)")
    p.add_argument("--precision", choices=("float64", "float32"), help="floating point precision (default float32)")
    talk = p.add_mutually_exclusive_group()
    talk.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors, no progress; the final "
                                                                 "table of each stage's fit is still printed")
    talk.add_argument("-v", "--verbose", action="store_true", help="debug messages too (on a terminal: each chunk's "
                                                                   "line above the live progress bar)")


def _overrides(args) -> dict:
    out = {}
    for key in ("transient_ms", "eval_ms", "seed", "precision", "routines"):
        if getattr(args, key, None) is not None:
            out[key] = getattr(args, key)
    if args.delays is not None:
        out["delays"] = args.delays
    rs = {}
    if args.fic_iterations is not None:
        rs["fic"] = {"n_iterations": args.fic_iterations}
    for key, value in (("n_iterations", args.eib_iterations), ("window", args.eib_window)):
        if value is not None:
            rs.setdefault("fic_eib", {})[key] = value
    if args.stages is not None or args.stage_iterations is not None:
        from tvb_eib_plugin.routines.schedule import annealing_schedule

        lengths = args.stage_iterations or [50000]
        lengths = lengths * (args.stages or 6) if len(lengths) == 1 else lengths
        if args.stages is not None and len(lengths) != args.stages:
            from tvb_eib_plugin.validation import InputError

            raise InputError(f"--stages {args.stages} but {len(lengths)} stage lengths given (--stage-iterations): "
                             f"give one length for every stage, or {args.stages} lengths")
        rs.setdefault("fic_eib", {})["schedule"] = annealing_schedule(
            len(lengths), lengths, args.stage_eta, args.eib_window or 150)
    if args.checkpoint:
        rs.setdefault("fic_eib", {})["checkpoint"] = args.checkpoint
    for key, value in (("n_steps", args.gradient_steps), ("duration_ms", args.gradient_ms)):
        if value is not None:
            rs.setdefault("gradient_eib", {})[key] = value
    if rs:
        out["routine_settings"] = rs
    return out


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    import warnings

    # TVB warns on import about an optional surface module the command never uses
    warnings.filterwarnings("ignore", message="Geodesic distance module is unavailable")
    import tvb_eib_plugin as eib
    from tvb_eib_plugin.experiment import EXPERIMENTS
    from tvb_eib_plugin.progress import verbosity
    from tvb_eib_plugin.routines import registered_routines

    if args.command == "list":
        for name, exp in EXPERIMENTS.items():
            variants = f" (variants: {', '.join(exp.variants)})" if exp.variants else ""
            print(f"experiment {name}{variants}")
        for name, cls in registered_routines().items():
            deps = f" (after {', '.join(cls.depends_on)})" if cls.depends_on else ""
            print(f"routine {name}{deps}: {cls.summary}")
        print("data sets:", ", ".join(eib.dataset_names()))
        return 0
    if args.command == "show":
        return _show(args)
    with verbosity(args.quiet, args.verbose):  # the progress goes through the tvb_eib_plugin logger
        return _cohort(args) if args.command == "cohort" else _run(args)


def _run(args) -> int:
    import tvb_eib_plugin as eib
    from tvb_eib_plugin.experiment import run_experiment

    try:
        _check_outputs(args)
        tree = run_experiment(args.experiment, variant=args.variant, connectome=args.connectivity, fc_target=args.fc,
                              **_overrides(args))
    except eib.InputError as err:
        return _input_error(err)
    except eib.SimulationDiverged as err:
        return _diverged(err, args)
    if args.quiet:  # the log's closing table, which -q silenced with the progress
        from tvb_eib_plugin.results import stage_summary

        for name, corr, rmse in stage_summary(tree):
            print(f"{name:14s} fc_corr={corr:.4f} fc_rmse={rmse:.4f}")
    print(f"results: {_save(tree, args)}")
    if args.figure:
        from tvb_eib_plugin.plot import results_figure

        results_figure(tree, args.figure)
        print(f"figure: {args.figure}")
    return 0


def _show(args) -> int:
    """A saved results file in words: provenance, each stage's fit and settings; optionally its figure."""
    import json

    import tvb_eib_plugin as eib

    try:
        if args.figure:
            from tvb_eib_plugin.outputs import check_output

            check_output(args.figure, "--figure", args.overwrite, "--overwrite")
        tree = eib.load_results(args.results) if os.path.exists(args.results) else None
        if tree is None:
            raise eib.InputError(f"no such results file: {args.results}")
    except eib.InputError as err:
        return _input_error(err)
    except (OSError, ValueError) as err:  # not netCDF, or not ours
        return _input_error(eib.InputError(f"{args.results} is not a results file: {err}"))
    attrs = tree.attrs
    for key in ("experiment", "data_source", "status", "failed_stage", "error", "created", "wall_time_s",
                "tvb_eib_plugin_version", "jax_version"):
        if key in attrs:
            print(f"{key}: {attrs[key]}")
    print(f"{'stage':14s}{'fc_corr':>9s} {'fc_rmse':>9s}  settings")
    for name, node in tree.children.items():
        ev = node.children.get("evaluation")
        corr, rmse = ((f"{float(ev['fc_corr']):.4f}", f"{float(ev['fc_rmse']):.4f}")
                      if ev is not None and ev["fc_corr"].ndim == 0 else ("-", "-"))
        status = f"  [{node.attrs['status']}]" if "status" in node.attrs else ""
        print(f"{name:14s}{corr:>9s} {rmse:>9s}  {node.attrs.get('settings', '')}{status}")
    if "settings" in attrs:
        print("experiment settings:", json.dumps(json.loads(attrs["settings"]), sort_keys=True)
              if isinstance(attrs["settings"], str) and attrs["settings"].startswith("{") else attrs["settings"])
    if args.figure:
        eib.results_figure(tree, args.figure)
        print(f"figure: {args.figure}")
    return 0


def _check_outputs(args) -> None:
    """Every file and folder the command writes, checked before anything is computed."""
    from tvb_eib_plugin.outputs import check_folder, check_output

    check_output(args.output, "-o/--output", args.overwrite, "--overwrite")
    if getattr(args, "figure", None):
        check_output(args.figure, "--figure", args.overwrite, "--overwrite")
    if args.checkpoint:  # written during the run, resumed from if there: it may exist
        check_folder(os.path.dirname(os.path.abspath(args.checkpoint)), "--checkpoint")
    if getattr(args, "out_dir", None):
        check_folder(args.out_dir, "--out-dir")


def _save(tree, args) -> str:
    """Write ``tree`` to ``args.output``; a file that appeared there while the run computed is kept."""
    from tvb_eib_plugin.outputs import free_name
    from tvb_eib_plugin.results import save_results

    path = args.output
    if os.path.exists(path) and not args.overwrite:
        path = free_name(path)
        print(f"tvb-eib: warning: {args.output} appeared during the run; keeping it, writing {path}",
              file=sys.stderr)
    return save_results(tree, path, overwrite=args.overwrite)


def _input_error(err) -> int:
    print(f"tvb-eib: error: {err}", file=sys.stderr)
    return EXIT_INPUT


def _diverged(err, args) -> int:
    """Report a run that diverged, and write the stages finished before it (the failed one marked)."""
    print(f"tvb-eib: error: {err}", file=sys.stderr)
    if err.results is not None:
        print(f"tvb-eib: the stages finished before {err.stage!r} and its partial history (status='failed') "
              f"are in {_save(err.results, args)}", file=sys.stderr)
    return EXIT_DIVERGED


def _cohort(args) -> int:
    import tvb_eib_plugin as eib
    from tvb_eib_plugin.cohort import tune_cohort

    from tvb_eib_plugin.progress import log_info

    log = log_info  # -q / -v: the logger's level (main)
    try:
        if bool(args.twins) == bool(args.subjects):
            raise eib.InputError("give subjects, or --twins N (not both)")
        _check_outputs(args)
        if not args.out_dir:  # before the first computation (the twins' included): JAX reads it once
            from tvb_eib_plugin.batch import use_host_devices

            use_host_devices(args.host_devices or None)
        truths = None
        subjects = args.subjects
        if args.twins:
            from tvb_eib_plugin.twins import twin_cohort

            subjects, truths = twin_cohort(eib.load_connectome(args.twin_of), args.twins,
                                           experiment=args.experiment, variant=args.variant)
        common = dict(seeds=args.seeds, variant=args.variant, log=log, **_overrides(args))
        if args.out_dir:
            from tvb_eib_plugin.distributed import tune_cohort_distributed

            tree = tune_cohort_distributed(args.experiment, subjects, out_dir=args.out_dir, n_workers=args.workers,
                                           address=args.scheduler, batch_size=args.batch_size, **common)
        else:
            tree = tune_cohort(args.experiment, subjects, **common)
    except eib.InputError as err:
        return _input_error(err)
    except eib.SimulationDiverged as err:
        return _diverged(err, args)
    print(f"results: {_save(tree, args)}")
    if truths:
        from tvb_eib_plugin.twins import cohort_recovery

        stage = [name for name in tree.children if name != "integration"][-1]
        print(f"twin recovery ({stage}): log(wLRE/wFFI) r over edges, over regions; J_i r; fc_corr")
        for row in cohort_recovery(tree, truths, stage, pooled=len(args.seeds) > 1):
            fit = f"{row['fc_corr']:.4f}" if "fc_corr" in row else "(consensus of the seeds: not simulated)"
            print(f"  {row['subject']} seed {row['seed']}: {row['ratio_corr']:.3f}, {row['region_ratio_corr']:.3f}; "
                  f"{row['J_i_corr']:.3f}; {fit}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
