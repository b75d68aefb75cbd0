"""The paper's own fit (Schirner, Deco & Ritter 2023), as settings of the experiment runner.

What differs from the reference workflow (spec section 11), each an option
of the existing pieces:

- Euler-Maruyama at dt = 1 ms with noise on S_e and S_i, conduction delays
  from tract lengths, no lamda (FFI enters x_i with J_N: lamda = 1);
- Balloon-Windkessel BOLD, the first 50 TRs discarded from every FC;
- FIC on firing rates (Vogels et al. 2011): eta 0.001, target 4 Hz, every TR,
  J_i >= 0, throughout the tuning;
- EIB in stages: rate halving from 0.1, FC window doubling from 150 TRs,
  10 simulated hours (50 000 TRs) per stage, updates on SC edges only;
- evaluation on a fresh simulation as long as the last FC window (4800 TRs,
  57.6 min), the first 50 TRs dropped; its first 20 minutes give the 20-minute FC.

Global coupling, noise and conduction speed were not published with the
paper's code; the defaults here (G: below, sigma = 0.01 per sqrt(ms) on both
populations, 3 mm/ms) are run-time settings.  The schedule is data: pass
``routine_settings={"fic_eib": {"schedule": annealing_schedule(4, 2000)}}``
(or ``tvb-eib run --experiment Schirner2023 --stages 4 --stage-iterations 2000``)
for a shorter one; with restarts every stage must be longer than its window
plus 50 TRs (the last of 6 stages: 4850), or the run is refused before it starts.

Two presets.  ``Schirner2023Text`` reads the paper's text alone (W / max W, TVB's
delay rounding, a simultaneous Balloon step, rmse_scale 1, one continuous run
through the stages).  ``Schirner2023`` follows the authors' released C program
wherever the text is silent or the code explicit (issue 16, which lists the
differences; tests/test_authors_program.py checks them against the program): the SC as sqrt(W) / max sqrt(W) / 10
(``normalise="sqrt_max10"``), its delay rounding (``delay_convention="schirner2023_c"``)
and Balloon update order (``bold_order="sequential"``), the row RMSE halved with a
simulated-FC diagonal of 1 but for the last region, and every stage a new run from
rest whose EIB waits for the window plus 50 TRs (``restart="per_stage"``; the
first stage too: the transient and FIC before it only set the starting J_i, as
the program's parameter file does).  Still ours: FIC from a stage's first TR
(the program's from its 10th), the noise stream, and stages resumed from exact
weights (the program's from its 5-decimal files, written every 25 TRs).

Its coupling G: the program's G sits in an unreleased parameter file.  Its weights
are G J_NMDA SC frac with frac (our wLRE / G) starting at 1 and its EIB step on
frac; on our wLRE that step is G times as large, so the preset scales the row
RMSE by G / 2 (the code's 1/2 times G).  G itself was picked by measurement on
dk_average (see :data:`G_CODE`).

Variants (the paper's Fig. 3c): ``"EI"`` tunes wLRE and wFFI (the default),
``"E"`` wLRE only with wFFI held at its start (= G; the program has no E-only
mode), ``"E_noFFI"`` wLRE only in the original model without feedforward
inhibition (wFFI = 0 from the transient on: the paper groups E-tuning with that
model), ``"global"`` the original model with one global coupling scalar chosen
by a sweep (routine ``global_coupling``).
"""

from __future__ import annotations

from ..routines.schedule import annealing_schedule

#: The code-following preset's coupling G (starting wLRE = wFFI).  The sqrt(W) / max / 10 weights have a mean
#: row sum of 0.61 on dk_average (W / max W: 1.53), so G = 1 feeds each region less than the text preset does.
#: Measured on dk_average (seed 0, float32, this preset with rmse_scale G / 2, 3 stages of 1000 TRs, a fresh
#: 15-minute evaluation; in-loop: the last window): G = 0.5: fc_corr 0.818 (in-loop 0.785); 1: 0.869 (0.836);
#: 2: 0.902 (0.867); 2.5: 0.905 (0.874); 3.5: 0.896 (0.861); 5: 0.890 (0.869).  At 2.5, 5 stages of 4000 TRs
#: reach 0.982 (seed 0) and 0.984 (seed 1) on the 57.6-minute evaluation.  A G sweep with FIC alone and
#: wFFI = wLRE (the tuning's start) fits nothing at any G in 0.5..8 (fc_corr -0.02..0.04: FFI cancels LRE),
#: so only the tuned fit can choose.
G_CODE = 2.5

#: mean row sum of W / max W over that of sqrt(W) / max sqrt(W) / 10 on dk_average (1.53 / 0.61 = 2.52)
ROW_SUM_RATIO = 2.5

#: FIC as the paper ran it: Vogels' rule on firing rates, target 4 Hz.
RATE_FIC = {"rule": "rate", "target": 4.0}


def schirner2023_settings(n_stages: int = 6, stage_iterations: int = 50000) -> dict:
    """Keyword arguments of ``ExperimentSettings`` for the paper's procedure as its released code runs it."""
    text = schirner2023_text_settings(n_stages, stage_iterations)
    code_eib = dict(restart="per_stage", lead_in=50, rmse_scale=0.5 * G_CODE, rmse_diagonal="one_but_last")
    return dict(
        text, name="Schirner2023", normalise="sqrt_max10", delay_convention="schirner2023_c",
        bold_order="sequential", coupling=G_CODE,
        routine_settings=dict(text["routine_settings"], fic_eib=dict(text["routine_settings"]["fic_eib"], **code_eib)),
        # the global sweep over the same mean input per region as the text preset's G in [0.5, 4] on W / max W
        variants=dict(text["variants"], **{"global": {**text["variants"]["global"], "routine_settings": {
            "global_coupling": dict(RATE_FIC, eta_fic=0.001, g_min=0.5 * ROW_SUM_RATIO, g_max=4.0 * ROW_SUM_RATIO)}}}),
    )


def schirner2023_text_settings(n_stages: int = 6, stage_iterations: int = 50000) -> dict:
    """Keyword arguments of ``ExperimentSettings`` for the paper's procedure as its text reads."""
    return dict(
        name="Schirner2023Text",
        delays=True,
        speed=3.0,
        dt=1.0,
        scheme="euler",
        sigma_e=0.01,
        sigma_i=0.01,
        bold="balloon",
        coupling=1.0,
        transient_ms=60000.0,
        eval_ms=4850 * 720.0,  # 50 dropped + 4800 TRs, the last stage's window
        eval_discard=50,
        routines=("fic", "fic_eib"),
        routine_settings={
            # FIC alone first, for the 150 BOLD samples of the first FC window
            "fic": dict(RATE_FIC, eta=0.001, n_iterations=150, log_every=50),
            "fic_eib": dict(RATE_FIC, eta_fic=0.001, schedule=annealing_schedule(n_stages, stage_iterations),
                            mask="sc", log_every=1000, record_every=100, checkpoint_every=10000),
        },
        variants={
            "EI": {},
            "E": {"routine_settings": {"fic_eib": {"tune": "lre"}}},
            "E_noFFI": {"feedforward": 0.0, "routine_settings": {"fic_eib": {"tune": "lre"}}},
            "global": {"routines": ("fic", "global_coupling"),
                       "routine_settings": {"global_coupling": dict(RATE_FIC, eta_fic=0.001)}},
        },
    )
