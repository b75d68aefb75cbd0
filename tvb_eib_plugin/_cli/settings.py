"""The command line's names for what a run is given, and back.

The flags of ``tvb-eib run`` / ``cohort`` are defined once, in :mod:`cli`'s argparse parser, and each
carries in its ``dest`` what it sets: a keyword of :func:`~tvb_eib_plugin._experiments.experiment.run_experiment`
(``connectome``, ``fc_target``), an experiment setting (``transient_ms``) or a routine hyperparameter
(``fic.n_iterations``).  From those definitions this module derives

- ``--set ROUTINE.PARAM=VALUE`` (any routine hyperparameter) and ``--set NAME=VALUE`` (any scalar
  experiment setting), each value read as the type its setting declares;
- :func:`overrides`: ``run_experiment``'s keywords from the flags given, each setting given once;
- :func:`check_routine_settings`: each value the command line gives a routine, checked alone, so that a bad
  one is refused naming the flag it came from;
- :func:`in_cli_terms`: an error from the Python API with each Python argument name it mentions replaced by
  the flag that sets it, so that the command never tells its user to pass ``fc_target=``.
"""

from __future__ import annotations

import argparse
import dataclasses
import re

from .._validation import InputError

SET = "--set"


class CliInputError(InputError):
    """Bad input found by the command line itself: its message names the flags already."""

_NONE = ("none", "null")
_BOOLS = {"true": True, "false": False}
#: what neotraits keeps as traits but is no hyperparameter
_NOT_SETTINGS = ("gid", "title")


def routine_params(routine: str) -> dict:
    """Name -> trait of every hyperparameter of a registered routine."""
    from ..routines import get_routine

    cls = get_routine(routine)
    return {k: getattr(cls, k) for k in cls.declarative_attrs if k not in _NOT_SETTINGS}


def experiment_fields() -> dict[str, type]:
    """Name -> type of the experiment settings ``--set NAME=VALUE`` gives: those with one scalar value
    (not the experiment's name or variant, which have their own flags)."""
    from .._experiments.experiment import ExperimentSettings

    return {f.name: type(f.default) for f in dataclasses.fields(ExperimentSettings)
            if isinstance(f.default, (bool, int, float, str)) and f.name not in ("name", "variant")}


def parse_value(raw: str, kind: type, what: str):
    """``raw`` read as ``kind`` (bool, int, float or str); 'none' / 'null' is None whatever the kind."""
    if raw.strip().lower() in _NONE:
        return None
    if kind is bool:
        if raw.strip().lower() not in _BOOLS:
            raise CliInputError(f"{what}: expected true or false, got {raw!r}")
        return _BOOLS[raw.strip().lower()]
    if kind is str:
        return raw
    if kind not in (int, float):
        raise CliInputError(f"{what}: takes a {kind.__name__}, which the command line cannot give; set it from "
                         "Python (run_experiment(routine_settings=...))")
    try:
        number = float(raw)
    except ValueError:
        raise CliInputError(f"{what}: expected a number, got {raw!r}") from None
    if kind is int:
        if not number.is_integer():
            raise CliInputError(f"{what}: expected a whole number, got {raw!r}")
        return int(number)
    return number


def parse_set(item: str) -> tuple[str, object]:
    """One ``--set`` item: ("routine.param" or "setting", value), the name checked against what exists."""
    from ..routines import registered_routines

    name, eq, raw = item.partition("=")
    name = name.strip()
    if not eq or not name:
        raise CliInputError(f"{SET} {item}: expected ROUTINE.PARAM=VALUE (e.g. fic_eib.eta_eib=0.01) or "
                         f"SETTING=VALUE (e.g. coupling=0.3)")
    what = f"{SET} {item}"
    routine, dot, param = name.partition(".")
    if not dot:
        fields = experiment_fields()
        if name not in fields:
            raise CliInputError(f"{what}: no experiment setting {name!r}; known: {', '.join(fields)}; or name a "
                             f"routine's parameter as ROUTINE.PARAM (routines: {', '.join(registered_routines())})")
        if name == "coupling" and raw.strip().lower() == "auto":  # a number, or chosen for the data
            return name, "auto"
        return name, parse_value(raw, fields[name], what)
    if routine not in registered_routines():
        raise CliInputError(f"{what}: no routine {routine!r}; known: {', '.join(registered_routines())}")
    params = routine_params(routine)
    if param not in params:
        raise CliInputError(f"{what}: routine {routine} has no parameter {param!r}; known: {', '.join(params)}")
    return name, parse_value(raw, params[param].field_type, what)


def check_routine_settings(settings: dict, sources: dict, run: list[str]) -> None:
    """Each routine value the command line gives (``sources``: "routine.param" -> the flag as typed), checked
    alone before anything runs: its routine is part of the run (``run``), its value within its bounds."""
    for routine, values in settings.items():
        for param, value in values.items():
            flag = sources[f"{routine}.{param}"]
            if routine not in run:
                drop = flag if flag.startswith(SET) else flag.split()[0]
                raise CliInputError(f"{flag} sets {routine}, which this run does not include (it runs "
                                    f"{', '.join(run)}): add {routine} to --routines, or drop {drop}")
            try:
                from ..routines import get_routine

                get_routine(routine)(**{param: value})
            except Exception as err:  # noqa: BLE001  (neotraits: out of bounds, not a choice, wrong type)
                raise CliInputError(f"{flag}: {str(err).splitlines()[0]}") from None


def overrides(args, actions) -> dict:
    """``run_experiment``'s overrides from the flags given (``actions``: the subcommand's, whose dests say
    what each sets) and ``--set``; each setting given once, each routine value checked."""
    from .._experiments.experiment import ExperimentSettings

    fields = {f.name for f in dataclasses.fields(ExperimentSettings)} - {"name", "variant"}  # those two: selectors
    out, rs, sources = {}, {}, {}

    def put(name: str, value, source: str) -> None:
        if name in sources:
            raise CliInputError(f"{name} is given twice, by {sources[name]} and by {source}: give it once")
        sources[name] = source
        routine, dot, param = name.partition(".")
        if dot:
            rs.setdefault(routine, {})[param] = value
        else:
            out[name] = value

    for action in actions:  # a flag's dest: an experiment setting or "routine.param"
        value = getattr(args, action.dest, None)
        if value is not None and (action.dest in fields or "." in action.dest):
            put(action.dest, value, _as_typed(action, value))
    if args.stages is not None or args.stage_iterations is not None:
        put("fic_eib.schedule", _schedule(args), "--stages/--stage-iterations")
    for item in args.set or ():
        put(*parse_set(item), f"{SET} {item}")
    if rs:
        check_routine_settings(rs, sources, _run_routines(args.experiment, args.variant, out.get("routines")))
        out["routine_settings"] = rs
    return out


def _as_typed(action, value) -> str:
    """A flag and its value as the user typed them (for messages)."""
    if isinstance(value, bool):
        return action.option_strings[0] if value else action.option_strings[-1]
    shown = " ".join(map(str, value)) if isinstance(value, list) else value
    return f"{action.option_strings[-1]} {shown}"


def _schedule(args) -> tuple:
    """The annealing schedule of --stages / --stage-iterations / --stage-eta / --eib-window."""
    from ..routines.schedule import annealing_schedule

    lengths = args.stage_iterations or [50000]
    lengths = lengths * (args.stages or 6) if len(lengths) == 1 else lengths
    if args.stages is not None and len(lengths) != args.stages:
        raise CliInputError(f"--stages {args.stages} but {len(lengths)} stage lengths given (--stage-iterations): "
                            f"give one length for every stage, or {args.stages} lengths")
    return annealing_schedule(len(lengths), lengths, args.stage_eta, getattr(args, "fic_eib.window") or 150)


def _run_routines(experiment: str, variant: str | None, routines) -> list[str]:
    """The routines a run will run, dependencies included."""
    from .._experiments.experiment import get_experiment
    from ..routines import dependency_order

    return dependency_order(list(routines or get_experiment(experiment).with_variant(variant).routines))


# -- Python names -> flags -------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Flag:
    """How the command line gives one Python name: ``text`` (``--fc``, ``--set fic.eta``), and for an on/off
    flag the text that turns it off."""

    text: str
    off: str | None = None

    def with_value(self, value: str) -> str:
        if self.off is not None and value in ("True", "False"):
            return self.text if value == "True" else self.off
        if self.text.startswith(SET):
            return f"{self.text}={value}" if value else self.text
        return f"{self.text} {value}" if value else self.text


def cli_names(actions) -> tuple[dict[str, Flag], dict[str, dict[str, Flag]]]:
    """From a (sub)parser's actions: Python name -> flag for the run's keywords and experiment settings, and
    routine -> parameter -> flag for every routine hyperparameter (its own flag, or ``--set``)."""
    from ..routines import registered_routines

    names = {name: Flag(f"{SET} {name}") for name in experiment_fields()}
    names["routine_settings"] = Flag(SET)
    params = {r: {p: Flag(f"{SET} {r}.{p}") for p in routine_params(r)} for r in registered_routines()}
    for action in actions:
        if not action.option_strings or action.dest in (argparse.SUPPRESS, "help"):
            continue
        longs = [o for o in action.option_strings if o.startswith("--")] or action.option_strings
        off = next((o for o in longs if o.startswith("--no-")), None)  # --delays / --no-delays
        flag = Flag(next(o for o in longs if o != off), off)
        routine, dot, param = action.dest.partition(".")
        if dot and routine in params:
            params[routine][param] = flag
        else:
            names[action.dest] = flag
    return names, params


_NAME = (r"(?<![\w./=-])(?P<tick>`?)(?P<name>{names})(?:(?P<eq>=)(?P<value>[^\s,;()`]*))?(?P=tick)"
         r"(?![\w/-]|\.\w)")  # a whole identifier, not part of a path or a flag; with its value, if any
_CLI_HINT = re.compile(r"\s*\(CLI --[\w-]+\)")


def in_cli_terms(message: str, names: dict[str, Flag], params: dict[str, dict[str, Flag]]) -> str:
    """An API error as the command line's user needs it: Python names replaced by the flags that set them.

    A name written as code (``name=value``, ```name```, or an identifier with an underscore) that is a run
    keyword or an experiment setting becomes its flag; a routine's parameter does where the message names
    that routine and no other named routine has a parameter of that name.  "(CLI --flag)" hints, now
    redundant, are dropped.  One pass, so that no flag is translated again.
    """
    message = _CLI_HINT.sub("", message)
    named = [r for r in params if re.search(r"(?<![\w-])" + re.escape(r) + r"(?![\w-])", message)]
    flags = {p: f for r in named for p, f in params[r].items() if sum(p in params[o] for o in named) == 1}
    flags.update(names)  # a run's own setting (its seed) before a routine's copy of it

    def flag(m: re.Match) -> str:
        name = flags[m["name"]]
        if m["eq"]:
            return name.with_value(m["value"])
        return name.text if m["tick"] or "_" in m["name"] else m[0]

    pattern = _NAME.format(names="|".join(re.escape(n) for n in sorted(flags, key=len, reverse=True)))
    return re.sub(pattern, flag, message)
