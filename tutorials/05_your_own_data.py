"""Tutorial 05: bringing your own connectome and FC, and what the loaders check.

What it teaches:
  * the BIDS connectivity layout the plugin reads (``relmat``): one
    ``*_meas-<measure>_relmat.dense.tsv`` per matrix and a ``*_nodeindices.tsv`` with a ``label``
    column; we write one from the shipped dk_average data into a temporary folder and read it back;
  * plain files for SC, tract lengths and FC: .npy, .csv (with or without a header row and label
    column), .tsv, .mat; putting them together into a ``Connectome``; running the tuning on it;
  * what is checked on the way in, and the messages you get (``eib.InputError``): negative
    weights, NaN, a non-symmetric FC, wrong shapes, labels that do not fit, an unknown data set.

Run:  python tutorials/05_your_own_data.py [--quick] [--out DIR]
"""

from __future__ import annotations

import logging
import os
import tempfile
import textwrap
import time
import warnings

import numpy as np

warnings.filterwarnings("ignore", message="Geodesic distance module is unavailable")

from tutorial_args import parse_tutorial_args  # noqa: E402
import tvb_eib_plugin as eib  # noqa: E402
from scipy.io import savemat  # noqa: E402

logging.getLogger("tvb").setLevel(logging.ERROR)  # tvb-data's zips lack optional files ('hemispheres')

FULL = dict(transient_ms=300_000.0, eval_ms=300_000.0, fic=200, eib=2000, window=150)
QUICK = dict(transient_ms=36_000.0, eval_ms=72_000.0, fic=60, eib=200, window=50)


def write_tsv(path, matrix):
    """A dense matrix as BIDS relmat stores it: tab-separated, no header."""
    np.savetxt(path, matrix, delimiter="\t", fmt="%.8g")


def show(path, n_lines=3, width=90):
    with open(path) as fh:
        for _ in range(n_lines):
            line = fh.readline().rstrip("\n").replace("\t", " <tab> ")
            print("       " + (line[:width] + " ..." if len(line) > width else line))


def expect_error(what, action):
    """Run ``action``; print the InputError it raises (it must raise one)."""
    try:
        action()
    except eib.InputError as err:
        print(f"   - {what}:")
        print(textwrap.indent(textwrap.fill(str(err), 100), "       "))
        return
    raise AssertionError(f"{what}: expected an InputError")


def main():
    args = parse_tutorial_args(__doc__)
    cfg = QUICK if args.quick else FULL
    import matplotlib.pyplot as plt

    started = time.perf_counter()
    dk = eib.load_dataset("dk_average")  # our source of "your" matrices
    labels = list(dk.labels)
    tmp = tempfile.TemporaryDirectory(prefix="eib_tutorial05_")
    root = tmp.name

    # ------------------------------------------------------------------------------------------
    print("1. A BIDS relmat folder")
    # ------------------------------------------------------------------------------------------
    bids = os.path.join(root, "sub-01_connectivity")
    os.makedirs(bids)
    stem = "sub-01_atlas-DesikanKilliany"
    write_tsv(os.path.join(bids, f"{stem}_meas-streamlineCount_relmat.dense.tsv"), dk.weights)
    write_tsv(os.path.join(bids, f"{stem}_meas-tractLength_relmat.dense.tsv"), dk.tract_lengths)
    write_tsv(os.path.join(bids, f"{stem}_meas-BoldCorrelation_relmat.dense.tsv"), dk.fc_target)
    with open(os.path.join(bids, f"{stem}_nodeindices.tsv"), "w") as fh:
        fh.write("index\tlabel\n" + "".join(f"{i}\t{lab}\n" for i, lab in enumerate(labels)))
    print(f"   {bids}/")
    for name in sorted(os.listdir(bids)):
        print(f"     {name}")
    print(f"   {stem}_nodeindices.tsv (a 'label' column; other columns are ignored):")
    show(os.path.join(bids, f"{stem}_nodeindices.tsv"))
    print(f"   {stem}_meas-streamlineCount_relmat.dense.tsv (N x N, row i receives from column j):")
    show(os.path.join(bids, f"{stem}_meas-streamlineCount_relmat.dense.tsv"), 2)

    con = eib.load_bids(bids)  # measure names select the files: weights=, lengths=, fc= (these are the defaults)
    print(f"   eib.load_bids(folder): {con.n_regions} regions, name {con.name!r}, "
          f"tract lengths: {con.tract_lengths is not None}, FC: {con.fc_target is not None}")
    same = all(np.allclose(getattr(con, k), getattr(dk, k), rtol=1e-7)
               for k in ("weights", "tract_lengths", "fc_target"))
    print(f"   same matrices as dk_average (to the 8 digits written): {same}; "
          f"same labels: {list(con.labels) == labels}")
    print("   eib.load_connectome(folder) reads it too, as does the command line: "
          f"tvb-eib run --connectivity {bids}")

    # ------------------------------------------------------------------------------------------
    print("\n2. Plain files: .npy, .csv, .tsv, .mat")
    # ------------------------------------------------------------------------------------------
    plain = os.path.join(root, "plain")
    os.makedirs(plain)
    np.save(os.path.join(plain, "sc.npy"), dk.weights)
    # a CSV with a header row and a label column, as spreadsheets write them: both are dropped
    with open(os.path.join(plain, "tract_lengths.csv"), "w") as fh:
        fh.write("region," + ",".join(labels) + "\n")
        for lab, row in zip(labels, dk.tract_lengths):
            fh.write(lab + "," + ",".join(f"{x:.8g}" for x in row) + "\n")
    write_tsv(os.path.join(plain, "fc.tsv"), dk.fc_target)
    savemat(os.path.join(plain, "fc.mat"), {"FC": dk.fc_target, "SC": dk.weights, "TR": 0.72})
    with open(os.path.join(plain, "labels.txt"), "w") as fh:
        fh.write("\n".join(labels) + "\n")
    for name in sorted(os.listdir(plain)):
        print(f"     {name}")
    print("   tract_lengths.csv starts:")
    show(os.path.join(plain, "tract_lengths.csv"), 2)
    sc = eib.load_matrix(os.path.join(plain, "sc.npy"))
    tl = eib.load_matrix(os.path.join(plain, "tract_lengths.csv"))  # header and label column detected
    fc_tsv = eib.load_matrix(os.path.join(plain, "fc.tsv"))
    fc_mat = eib.load_matrix(os.path.join(plain, "fc.mat"), key="FC")  # two square matrices in the file: name one
    plain_labels = eib.load_labels(os.path.join(plain, "labels.txt"))  # one per line, or a table with a 'label' column
    print(f"   eib.load_matrix: sc.npy {sc.shape}, tract_lengths.csv {tl.shape}, fc.tsv {fc_tsv.shape}, "
          f"fc.mat[FC] {fc_mat.shape}; the two FCs agree: {np.allclose(fc_tsv, fc_mat, atol=1e-7)}")
    mine = eib.Connectome(labels=plain_labels, weights=sc, tract_lengths=tl, fc_target=fc_mat, speed=3.0,
                          name="sub-01 (plain files)")
    print(f"   eib.Connectome(labels, weights, tract_lengths, fc_target): {mine.n_regions} regions, "
          "checked on creation")
    swapped = eib.load_connectome(bids, fc=os.path.join(plain, "fc.tsv"))  # any source, FC from a file
    print(f"   eib.load_connectome(bids_folder, fc='fc.tsv'): FC replaced from the file "
          f"(equal: {np.allclose(swapped.fc_target, fc_tsv)})")

    # ------------------------------------------------------------------------------------------
    print("\n3. Tuning it: the same call as for the shipped data")
    # ------------------------------------------------------------------------------------------
    tree = eib.run_experiment(connectome=mine, routines=("fic", "fic_eib"), transient_ms=cfg["transient_ms"],
                              eval_ms=cfg["eval_ms"], log=None,
                              routine_settings={"fic": {"n_iterations": cfg["fic"]},
                                                "fic_eib": {"n_iterations": cfg["eib"], "window": cfg["window"]}})
    for stage in ("integration", "fic", "fic_eib"):
        ev = tree[f"{stage}/evaluation"]
        print(f"   {stage:12s} fc_corr {float(ev.fc_corr):.3f}  fc_rmse {float(ev.fc_rmse):.3f}")
    print(f"   data source recorded in the results: {tree.attrs['data_source']!r}")

    # ------------------------------------------------------------------------------------------
    print("\n4. What is checked, and the messages (each raises eib.InputError, a ValueError)")
    # ------------------------------------------------------------------------------------------
    bad_w = dk.weights.copy()
    bad_w[3, 7] = -2.5
    expect_error("negative SC weights", lambda: eib.Connectome(labels=labels, weights=bad_w))

    nan_path = os.path.join(plain, "sc_with_nan.csv")
    nan_w = dk.weights.copy()
    nan_w[10, 2] = np.nan
    np.savetxt(nan_path, nan_w, delimiter=",")
    expect_error("NaN in a matrix file", lambda: eib.load_matrix(nan_path))

    asym = dk.fc_target.copy()
    asym[0, 1] += 0.2
    expect_error("a non-symmetric FC", lambda: eib.load_connectome(bids, fc=asym))

    cov = dk.fc_target * 3.0
    expect_error("an FC outside [-1, 1] (a covariance?)", lambda: mine.with_fc(cov))

    rect_path = os.path.join(plain, "fc_83_rows.tsv")
    write_tsv(rect_path, dk.fc_target[:-1])
    expect_error("a matrix that is not square", lambda: eib.load_matrix(rect_path))

    expect_error("an FC of another parcellation (76 regions for 84)",
                 lambda: eib.load_connectome(bids, fc=np.corrcoef(np.random.default_rng(0).normal(size=(76, 200)))))

    short = eib.load_dataset("connectivity_76")
    expect_error("an FC for a network of another size (run_experiment with a network)",
                 lambda: eib.run_experiment(network=eib.network_from_connectome(short, delays=False),
                                            fc_target=dk.fc_target, log=None))

    expect_error("too few labels", lambda: eib.load_connectome(bids, labels=labels[:-1]))

    dup = list(labels)
    dup[5] = dup[4]
    expect_error("duplicate labels", lambda: eib.Connectome(labels=dup, weights=dk.weights))

    bad_bids = os.path.join(root, "bad_bids")
    os.makedirs(bad_bids)
    for name in os.listdir(bids):
        src = os.path.join(bids, name)
        with open(src) as fh:
            text = fh.read()
        if name.endswith("_nodeindices.tsv"):  # one region missing from the label table
            text = "".join(text.splitlines(keepends=True)[:-1])
        with open(os.path.join(bad_bids, name), "w") as fh:
            fh.write(text)
    expect_error("a BIDS folder whose label table lacks a region", lambda: eib.load_bids(bad_bids))

    # Where a file names its regions, the loaders check the order: a relmat or FC file whose header
    # lists the same regions in another order is reordered to the connectome's (with an
    # eib.InputWarning), one naming other regions is refused. Only a matrix without labels (a
    # headerless file read by plain eib.load_matrix) cannot be checked; when its labels come from
    # elsewhere, compare them yourself:
    shuffled = list(np.random.default_rng(1).permutation(labels))
    expect_error("labels that disagree between two sources (checked by hand with check_labels_agree)",
                 lambda: eib.check_labels_agree(labels, shuffled, "the SC labels", "the FC file's header"))

    expect_error("an unknown data set name", lambda: eib.load_dataset("dk_avrage"))
    expect_error("a path that is neither data set, folder nor zip", lambda: eib.load_connectome("my_connectome.h5"))
    xlsx = os.path.join(plain, "fc.xlsx")
    open(xlsx, "wb").close()
    expect_error("an unknown file format", lambda: eib.load_matrix(xlsx))
    expect_error("a file that is not there", lambda: eib.load_matrix(os.path.join(plain, "fc_sub-02.npy")))
    expect_error("a .mat file with several square matrices and no key",
                 lambda: eib.load_matrix(os.path.join(plain, "fc.mat")))

    # ------------------------------------------------------------------------------------------
    print("\n5. Figure")
    # ------------------------------------------------------------------------------------------
    fig, ax = plt.subplots(1, 4, figsize=(20, 4.8), layout="constrained")
    panels = [(np.log10(np.where(mine.weights > 0, mine.weights, np.nan)), "SC: log10 streamline count (sc.npy)",
               "viridis", None, None),
              (mine.tract_lengths, "Tract lengths, mm (tract_lengths.csv)", "magma", None, None),
              (mine.fc_target, "Target FC (fc.mat, key 'FC')", "cividis", 0, 1),
              (tree["fic_eib/evaluation"].fc.values,
               f"After FIC+EIB (r = {float(tree['fic_eib/evaluation'].fc_corr):.3f})", "cividis", 0, 1)]
    for a, (m, title, cmap, vmin, vmax) in zip(ax, panels):
        m = np.array(m, dtype=float)
        if vmin is not None:
            np.fill_diagonal(m, np.nan)
        im = a.imshow(m, cmap=cmap, vmin=vmin, vmax=vmax)
        a.set(title=title, xlabel="region j", ylabel="region i")
        fig.colorbar(im, ax=a, fraction=0.046)
    fig.suptitle("Tutorial 05: your own files in, checked, tuned" + (" (--quick)" if args.quick else ""))
    path = os.path.join(args.out, "05_your_own_data.png")
    fig.savefig(path, dpi=100)
    plt.close(fig)
    print(f"   {path}")
    tmp.cleanup()
    print(f"\nDone in {time.perf_counter() - started:.0f} s.")


if __name__ == "__main__":
    main()
