"""The ``tvb-eib`` command.

    tvb-eib run [--experiment NAME] [--connectivity SRC] [--fc FILE] [-o results.nc] [--figure fig.png] ...
    tvb-eib list
"""

from __future__ import annotations

import argparse
import sys


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="tvb-eib", description="FIC and EIB tuning of Wong-Wang brain network models")
    sub = p.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run a named experiment and write results.nc and a figure")
    run.add_argument("--experiment", default="EI_Tuning_FIC_EIB_Optimization",
                     help="EI_Tuning_FIC_EIB_Optimization (the reference workflow) or Schirner2023 (the paper's fit)")
    run.add_argument("--variant", help="a variant of the experiment (Schirner2023: EI, E or global)")
    run.add_argument("--connectivity", help="data set name, BIDS relmat folder or TVB connectivity .zip "
                                            "(default: the experiment's, dk_average)")
    run.add_argument("--fc", help="target FC file (.npy/.csv/.tsv/.mat); default: the connectivity's own")
    run.add_argument("--routines", nargs="+", help="routines to run (dependencies are added)")
    run.add_argument("--fic-iterations", type=int)
    run.add_argument("--eib-iterations", type=int)
    run.add_argument("--eib-window", type=int, help="BOLD samples in the FIC+EIB FC window (default 150)")
    run.add_argument("--stages", type=int, help="EIB in this many annealing stages (rate halving from "
                                                "--stage-eta, window doubling from --eib-window or 150)")
    run.add_argument("--stage-iterations", type=int, nargs="+",
                     help="TRs per annealing stage, or one number per stage (Schirner2023: 50000)")
    run.add_argument("--stage-eta", type=float, default=0.1, help="learning rate of the first stage (0.1)")
    run.add_argument("--checkpoint", help="fic_eib checkpoint file: written during the run, resumed from if present")
    run.add_argument("--gradient-steps", type=int, help="optimizer steps of gradient_eib (default 66)")
    run.add_argument("--gradient-ms", type=float, help="simulated ms per gradient loss evaluation (default 300000)")
    run.add_argument("--transient-ms", type=float)
    run.add_argument("--eval-ms", type=float)
    run.add_argument("--delays", action="store_true", help="use conduction delays from tract lengths")
    run.add_argument("--seed", type=int)
    run.add_argument("--precision", choices=("float64", "float32"))
    run.add_argument("-o", "--output", default="results.nc", help="results file (netCDF)")
    run.add_argument("--figure", default="results.png", help="figure file (PNG); '' to skip")
    run.add_argument("-q", "--quiet", action="store_true")
    sub.add_parser("list", help="list experiments, routines and data sets")
    return p


def _overrides(args) -> dict:
    out = {}
    for key in ("transient_ms", "eval_ms", "seed", "precision", "routines"):
        if getattr(args, key) is not None:
            out[key] = getattr(args, key)
    if args.delays:
        out["delays"] = True
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
            raise SystemExit(f"tvb-eib: error: --stages {args.stages} but {len(lengths)} stage lengths given")
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
    import tvb_eib_plugin as eib
    from tvb_eib_plugin.experiment import EXPERIMENTS, run_experiment
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
    try:
        tree = run_experiment(args.experiment, variant=args.variant, connectome=args.connectivity, fc_target=args.fc,
                              log=None if args.quiet else print, **_overrides(args))
    except eib.InputError as err:
        print(f"tvb-eib: error: {err}", file=sys.stderr)
        return 2
    from tvb_eib_plugin.results import save_results

    print(f"results: {save_results(tree, args.output)}")
    if args.figure:
        from tvb_eib_plugin.plot import results_figure

        results_figure(tree, args.figure)
        print(f"figure: {args.figure}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
