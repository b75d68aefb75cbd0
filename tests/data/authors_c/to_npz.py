"""The traced run of the authors' program (trace.txt) as the test fixture."""
import numpy as np
N = 16
inp = np.load("inputs.npz")
rec = {k: [] for k in ("STEP", "SAMPLE", "JI", "FIT", "SIMFC", "EMPFC", "LRE_BEFORE", "FFI_BEFORE", "LRE_AFTER", "FFI_AFTER")}
for line in open("run/trace.txt"):
    tag, *vals = line.split()
    rec[tag].append(vals)
def dense(rows):
    (row,) = rows
    t = np.array(row[1:], dtype=np.float64).reshape(-1, 3)
    m = np.zeros((N, N))
    m[t[:, 0].astype(int), t[:, 1].astype(int)] = t[:, 2]
    return m.astype(np.float32)
steps = np.array([r[1:] for r in rec["STEP"]], np.float32).reshape(-1, N, 8)
samples = np.array([r[2:] for r in rec["SAMPLE"]], np.float32).reshape(-1, N, 6)
sample_ts = np.array([r[1] for r in rec["SAMPLE"]], np.int32)
ji_after = np.array([r[1:] for r in rec["JI"]], np.float32)
fic_bold_len = np.array([r[0] for r in rec["JI"]], np.int32)
(fit,) = rec["FIT"]
out = dict(
    weights=inp["weights"], tract_lengths=inp["tract_lengths"], fc_target=inp["fc"],
    # param file: nodes G J_NMDA w_plus J_i sigma time_steps FIC_time_steps BOLD_TR v seed; argv: seed cc_len eta
    G=1.0, J_NMDA=0.15, w_plus=1.4, J_i0=1.0, sigma=0.0, time_steps=6001, tr_ms=100, speed=3.0, cc_len=10, eta=0.1,
    step_S_e=steps[..., 0], step_S_i=steps[..., 1], step_r_e=steps[..., 2], step_r_i=steps[..., 3],
    step_balloon=steps[..., 4:],  # x, f, nu, q
    sample_ts=sample_ts, sample_S_e=samples[..., 0], sample_S_i=samples[..., 1], sample_bold=samples[..., 2],
    sample_rate_e=samples[..., 3], sample_rate_i=samples[..., 4], sample_J_i=samples[..., 5],
    fic_bold_len=fic_bold_len, fic_J_i_after=ji_after,
    eib_bold_len=int(fit[0]), eib_fc_corr=float(fit[1]), eib_fc_rmse=float(fit[2]),
    eib_sim_fc=np.array(rec["SIMFC"][0][1:], np.float32).reshape(N, N),
    eib_emp_fc=np.array(rec["EMPFC"][0][1:], np.float32).reshape(N, N),
    eib_lre_before=dense(rec["LRE_BEFORE"]), eib_ffi_before=dense(rec["FFI_BEFORE"]),
    eib_lre_after=dense(rec["LRE_AFTER"]), eib_ffi_after=dense(rec["FFI_AFTER"]),
)
np.savez_compressed("schirner2023_c_16regions.npz", **out)
print({k: np.shape(v) for k, v in out.items()})
