"""Inputs for the authors' C program, in its own text format, from the first 16 regions of dk_average."""
import numpy as np, tvb_eib_plugin as eib
N = 16
con = eib.load_dataset("dk_average")
sc = con.weights[:N, :N]
tl = con.tract_lengths[:N, :N]
fc = con.fc_target[:N, :N]
# the paper's preprocessing (preprocess_HCP_data.m l.201-217) for one average SC: mask = SC > 0
w = np.sqrt(sc) / np.sqrt(sc).max() / 10.0
w[sc <= 0] = 0.0
tl = np.where(sc > 0, tl, 0.0)
def rows(path, values, header):
    with open(f"run/input/{path}", "w") as fh:
        fh.write(header)
        for i in range(N):
            idx = np.nonzero(w[i] > 0)[0]
            fh.write(f"{i} {len(idx)}\n" + " ".join(values(i, idx)) + "\n")
rows("sub_SC_strengths.txt", lambda i, idx: [f"{w[i, j]:.17g}" for j in idx], f"{N}\n")
rows("sub_SC_distances.txt", lambda i, idx: [f"{tl[i, j]:.17g}" for j in idx], f"{N}\n{tl.max():.17g}\n")
rows("sub_SC_regionids.txt", lambda i, idx: [str(j) for j in idx], f"{N}\n")
rows("sub_FC.txt", lambda i, idx: [f"{fc[i, j]:.17g}" for j in idx], f"{N}\n")
with open("run/input/sub_FCfull.txt", "w") as fh:
    for i in range(N):
        fh.write(" ".join(f"{v:.17g}" for v in fc[i]) + "\n")
# param file: nodes G J_NMDA w_plus J_i(initial) sigma time_steps FIC_time_steps BOLD_TR(ms) v(mm/ms) seed
with open("run/params", "w") as fh:
    fh.write(f"{N} 1.0 0.15 1.4 1.0 0.0 6001 0 100 3.0 1\n")
np.savez("inputs.npz", weights=w, tract_lengths=tl, fc=fc)
print(w.max(), w[w > 0].min(), tl.max(), (w > 0).sum())
