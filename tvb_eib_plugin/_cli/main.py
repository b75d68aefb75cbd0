"""The ``tvb-eib`` command.

    tvb-eib run [--experiment NAME] [--connectivity SRC] [--fc FILE] [-o results.nc] [--figure fig.png] ...
    tvb-eib run ... --set fic_eib.eta_eib=0.01 --set coupling=0.3     (any routine hyperparameter or setting)
    tvb-eib cohort SUBJECT [SUBJECT ...] [--seeds 0 1 ...] [--out-dir DIR] [-o cohort.nc] ...
    tvb-eib cohort --twins N [--twin-of dk_average] ...
    tvb-eib show results.nc [--figure fig.png]
    tvb-eib list                                                       (experiments, routines and their parameters)

Messages: progress and the fit table on stdout through the ``tvb_eib_plugin`` logger (-q: none, -v: debug
lines too); warnings and errors on stderr, errors in the command's terms (its flags; see :mod:`cli_settings`).

Exit status: 0 done; 2 bad input or usage (nothing computed); 3 the run diverged (saturated, NaN or runaway
weights): the stages finished before it are written to the output file, the failed one marked.
"""

from __future__ import annotations

import argparse
import contextlib
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
    run.add_argument("--connectivity", dest="connectome", metavar="SRC",
                     help="data set name, BIDS relmat folder or TVB connectivity .zip (default: the experiment's, "
                          "dk_average)")
    run.add_argument("--fc", dest="fc_target", metavar="FILE",
                     help="target FC file (.npy/.csv/.tsv/.mat); default: the connectivity's own")
    run.add_argument("--seed", type=_seed, help="noise seed of the transient, routines and evaluations (default 0)")
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
    cohort.add_argument("--seeds", type=_seed, nargs="+", default=[0], help="noise seeds (each subject runs each)")
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
                   help="EI_Tuning_FIC_EIB_Optimization (the reference workflow), Schirner2023 (the paper's fit as "
                        "its released code runs it; restarted stages must be longer than their window + 50 TRs), "
                        "Schirner2023Fast (the same at Heun dt 4 ms, about a minute) or Schirner2023Text (the "
                        "paper's text alone, one continuous run)")
    p.add_argument("--variant", help="a variant of the experiment (Schirner2023*: EI, E, E_noFFI or global)")
    p.add_argument("--routines", nargs="+", help="routines to run (dependencies are added)")
    # a flag that sets one routine hyperparameter says which in its dest ("routine.param", see cli_settings)
    p.add_argument("--fic-iterations", type=int, dest="fic.n_iterations", metavar="N",
                   help="FIC iterations, one TR each (reference: 200)")
    p.add_argument("--eib-iterations", type=int, dest="fic_eib.n_iterations", metavar="N",
                   help="FIC+EIB iterations, one TR each, without --stages (reference: 2000)")
    p.add_argument("--eib-window", type=int, dest="fic_eib.window", metavar="N",
                   help="BOLD samples in the FIC+EIB FC window (default 150)")
    p.add_argument("--stages", type=int, help="EIB in this many annealing stages (rate halving from "
                                              "--stage-eta, window doubling from --eib-window or 150)")
    p.add_argument("--stage-iterations", type=int, nargs="+",
                   help="TRs per annealing stage, or one number per stage (Schirner2023: 50000)")
    p.add_argument("--stage-eta", type=float, default=0.1, help="learning rate of the first stage (0.1)")
    p.add_argument("--checkpoint", dest="fic_eib.checkpoint", metavar="FILE",
                   help="fic_eib checkpoint file: written during the run, resumed from if present")
    p.add_argument("--gradient-steps", type=int, dest="gradient_eib.n_steps", metavar="N",
                   help="optimizer steps of gradient_eib (default 66)")
    p.add_argument("--gradient-ms", type=float, dest="gradient_eib.duration_ms", metavar="MS",
                   help="simulated ms per gradient loss evaluation (default 300000)")
    p.add_argument("--transient-ms", type=float, help="simulated before tuning, ms (reference: 300000)")
    p.add_argument("--eval-ms", type=float, help="length of each stage's evaluation simulation, ms "
                                                 "(reference: 300000)")
    p.add_argument("--delays", action=argparse.BooleanOptionalAction, default=None,
                   help="use conduction delays from tract lengths, or not (--no-delays); default: the experiment's "
                        "(EI_Tuning_FIC_EIB_Optimization: none, Schirner2023: delays)")
    p.add_argument("--precision", choices=("float64", "float32"), help="floating point precision (default float32)")
    p.add_argument("--set", action="append", metavar="NAME=VALUE",
                   help="any routine hyperparameter, ROUTINE.PARAM=VALUE (e.g. fic_eib.eta_eib=0.01), or experiment "
                        "setting, NAME=VALUE (e.g. coupling=0.3, eval_discard=10); repeatable; `tvb-eib list` "
                        "shows the names and defaults")
    talk = p.add_mutually_exclusive_group()
    talk.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors: no progress, no table "
                                                                 "of the fit, no output paths")
    talk.add_argument("-v", "--verbose", action="store_true", help="debug messages too: the resolved run and the "
                                                                   "JAX devices, and on a terminal each chunk's line "
                                                                   "above the live progress bar")


def _seed(text: str) -> int:
    """A noise seed: a whole number in [0, 2**31 - 1] (JAX's keys), refused by argparse naming its flag."""
    value = int(text)
    if not 0 <= value < 2**31:
        raise argparse.ArgumentTypeError(f"a seed is a whole number from 0 to {2**31 - 1}, got {text}")
    return value


def _command_actions(command: str) -> list:
    """The argparse actions of a subcommand: the one definition of its flags and what each sets."""
    sub = next(a for a in _parser()._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices[command]._actions


def _overrides(args) -> dict:
    """``run_experiment``'s overrides from the flags given and ``--set``, each setting given once."""
    from tvb_eib_plugin._cli.settings import overrides

    return overrides(args, _command_actions(args.command))


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    with _command_output():
        import jax

        from tvb_eib_plugin.routines.progress import verbosity

        # the command's own process: float64 on from the start, without the note a library user gets
        jax.config.update("jax_enable_x64", True)

        try:
            if args.command == "list":
                return _list()
            if args.command == "show":
                return _show(args)
            with verbosity(args.quiet, args.verbose):  # the progress goes through the tvb_eib_plugin logger
                return _cohort(args) if args.command == "cohort" else _run(args)
        except BrokenPipeError:  # `tvb-eib show r.nc | head`: the reader has what it wanted; no traceback
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # Python's own flush at exit fails too
            return 1


@contextlib.contextmanager
def _command_output():
    """The command's way of showing warnings, without TVB's notes; undone when it returns (a test, a notebook)."""
    import logging
    import warnings

    with warnings.catch_warnings():
        # TVB warns on import about an optional surface module the command never uses
        warnings.filterwarnings("ignore", message="Geodesic distance module is unavailable")
        warnings.showwarning = _show_warning
        import tvb_eib_plugin  # noqa: F401  (imports TVB, which sets its logger's level: set ours after it)

        # TVB logs notes on optional parts of its files ("File 'hemispheres' not found in ZIP") to stdout,
        # timestamped; its errors still show
        tvb_log = logging.getLogger("tvb")
        before = tvb_log.level
        tvb_log.setLevel(logging.ERROR)
        try:
            yield
        finally:
            tvb_log.setLevel(before)


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """A warning as the command's user reads it: what and why, not the line of our source that raised it."""
    print(f"tvb-eib: warning ({category.__name__}): {message}", file=sys.stderr if file is None else file)


def _list() -> int:
    import tvb_eib_plugin as eib
    from tvb_eib_plugin._cli.settings import experiment_fields, routine_params
    from tvb_eib_plugin._experiments.experiment import EXPERIMENTS, ExperimentSettings
    from tvb_eib_plugin.routines import registered_routines

    for name, exp in EXPERIMENTS.items():
        variants = f" (variants: {', '.join(exp.variants)})" if exp.variants else ""
        print(f"experiment {name}{variants}")
    print("  settings (--set NAME=VALUE):", ", ".join(f"{k}={getattr(ExperimentSettings(), k)}"
                                                       for k in experiment_fields()))
    for name, cls in registered_routines().items():
        deps = f" (after {', '.join(cls.depends_on)})" if cls.depends_on else ""
        print(f"routine {name}{deps}: {cls.summary}")
        print(f"  parameters (--set {name}.PARAM=VALUE):",
              ", ".join(f"{k}={t.default}" for k, t in routine_params(name).items()))
    print("data sets:", ", ".join(eib.dataset_names()))
    return 0


def _run(args) -> int:
    import tvb_eib_plugin as eib
    from tvb_eib_plugin._experiments.experiment import run_experiment
    from tvb_eib_plugin.routines.progress import logger

    try:
        _check_outputs(args)
        overrides = _overrides(args)
        _debug_request(args, dict(variant=args.variant, connectome=args.connectome, fc_target=args.fc_target,
                                  **overrides))
        tree = run_experiment(args.experiment, variant=args.variant, connectome=args.connectome,
                              fc_target=args.fc_target, **overrides)
    except eib.InputError as err:
        return _input_error(err, args.command)
    except eib.SimulationDiverged as err:
        return _diverged(err, args)
    logger.info(f"results: {_save(tree, args)}")  # through the logger: -q silences it with the rest
    if args.figure:
        from tvb_eib_plugin._io.plot import results_figure

        results_figure(tree, args.figure)
        logger.info(f"figure: {args.figure}")
    return 0


def _debug_request(args, request: dict) -> None:
    """-v: the Python call the command makes (to repeat it in a notebook), and where JAX runs it."""
    import jax

    from tvb_eib_plugin.routines.progress import logger

    given = "".join(f", {k}={v!r}" for k, v in request.items() if v is not None)
    logger.debug(f"tvb-eib: run_experiment({args.experiment!r}{given})")
    logger.debug(f"tvb-eib: JAX {jax.__version__} on {jax.default_backend()}: {jax.devices()}")


def _show(args) -> int:
    """A saved results file in words: provenance, each stage's fit and settings; optionally its figure."""
    import json

    import tvb_eib_plugin as eib

    try:
        if args.figure:
            from tvb_eib_plugin._outputs import check_output

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
    from tvb_eib_plugin._outputs import check_folder, check_output

    check_output(args.output, "-o/--output", args.overwrite, "--overwrite")
    if getattr(args, "figure", None):
        check_output(args.figure, "--figure", args.overwrite, "--overwrite")
    checkpoint = getattr(args, "fic_eib.checkpoint")
    if checkpoint:  # written during the run, resumed from if there: it may exist
        check_folder(os.path.dirname(os.path.abspath(checkpoint)), "--checkpoint")
    if getattr(args, "out_dir", None):
        check_folder(args.out_dir, "--out-dir")


def _save(tree, args) -> str:
    """Write ``tree`` to ``args.output``; a file that appeared there while the run computed is kept."""
    from tvb_eib_plugin._outputs import free_name
    from tvb_eib_plugin._io.results import save_results

    path = args.output
    if os.path.exists(path) and not args.overwrite:
        path = free_name(path)
        print(f"tvb-eib: warning: {args.output} appeared during the run; keeping it, writing {path}",
              file=sys.stderr)
    return save_results(tree, path, overwrite=args.overwrite)


def _input_error(err, command: str | None = None) -> int:
    """Bad input, named as the command's user gives it: the flags, not the Python arguments behind them."""
    from tvb_eib_plugin._cli.settings import CliInputError, cli_names, in_cli_terms

    message = str(err)
    if command in ("run", "cohort") and not isinstance(err, CliInputError):
        message = in_cli_terms(message, *cli_names(_command_actions(command)))
    print(f"tvb-eib: error: {message}", file=sys.stderr)
    return EXIT_INPUT


def _diverged(err, args) -> int:
    """Report a run that diverged, and write the stages finished before it (the failed one marked)."""
    from tvb_eib_plugin._cli.settings import cli_names, in_cli_terms

    print(f"tvb-eib: error: {in_cli_terms(str(err), *cli_names(_command_actions(args.command)))}", file=sys.stderr)
    if err.results is not None:
        print(f"tvb-eib: the stages finished before {err.stage!r} and its partial history (status='failed') "
              f"are in {_save(err.results, args)}", file=sys.stderr)
    return EXIT_DIVERGED


def _cohort(args) -> int:
    import tvb_eib_plugin as eib
    from tvb_eib_plugin._cohorts.cohort import tune_cohort

    from tvb_eib_plugin.routines.progress import log_info, logger

    log = log_info  # -q / -v: the logger's level (main)
    try:
        if bool(args.twins) == bool(args.subjects):
            raise eib.InputError("give subjects, or --twins N (not both)")
        _check_outputs(args)
        overrides = _overrides(args)  # bad settings refused before the twins are simulated
        if not args.out_dir:  # before the first computation (the twins' included): JAX reads it once
            from tvb_eib_plugin._simulation.batch import use_host_devices

            use_host_devices(args.host_devices or None)
        truths = None
        subjects = args.subjects
        if args.twins:
            from tvb_eib_plugin._cohorts.twins import twin_cohort

            subjects, truths = twin_cohort(eib.load_connectome(args.twin_of), args.twins,
                                           experiment=args.experiment, variant=args.variant)
        common = dict(seeds=args.seeds, variant=args.variant, log=log, **overrides)
        if args.out_dir:
            from tvb_eib_plugin._cohorts.distributed import tune_cohort_distributed

            tree = tune_cohort_distributed(args.experiment, subjects, out_dir=args.out_dir, n_workers=args.workers,
                                           address=args.scheduler, batch_size=args.batch_size, **common)
        else:
            tree = tune_cohort(args.experiment, subjects, **common)
    except eib.InputError as err:
        return _input_error(err, args.command)
    except eib.SimulationDiverged as err:
        return _diverged(err, args)
    logger.info(f"results: {_save(tree, args)}")
    if truths:  # printed even with -q: the recovery report is nowhere else
        from tvb_eib_plugin._cohorts.twins import cohort_recovery

        stage = [name for name in tree.children if name != "integration"][-1]
        print(f"twin recovery ({stage}): log(wLRE/wFFI) r over edges, over regions; J_i r; fc_corr")
        for row in cohort_recovery(tree, truths, stage, pooled=len(args.seeds) > 1):
            fit = f"{row['fc_corr']:.4f}" if "fc_corr" in row else "(consensus of the seeds: not simulated)"
            print(f"  {row['subject']} seed {row['seed']}: {row['ratio_corr']:.3f}, {row['region_ratio_corr']:.3f}; "
                  f"{row['J_i_corr']:.3f}; {fit}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
