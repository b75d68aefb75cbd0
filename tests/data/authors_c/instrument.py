"""Instrument a copy (orig.c -> traced.c) of the authors' program: print statements only, inserted after original lines."""
DUMP = ('{ int jj, kk; fprintf(TRACE, "%s %%d", BOLD_len); for (jj = 0; jj < nodes; jj++) '
        'for (kk = 0; kk < n_conn_table[jj]; kk++) fprintf(TRACE, " %%d %%d %%.9g", jj, SC_inpreg[jj].inpreg[kk], '
        '%s[jj].cap[kk]); fprintf(TRACE, "\\n"); }')
MAT = ('{ int jj; fprintf(TRACE, "%s %%d", BOLD_len); for (jj = 0; jj < nodes * nodes; jj++) '
       'fprintf(TRACE, " %%.9g", %s[jj]); fprintf(TRACE, "\\n"); }')
INSERT = {
    526: ['FILE *TRACE = fopen("trace.txt", "w");'],
    906: ['if (ts < 300) { int jj; fprintf(TRACE, "STEP %d", ts); for (jj = 0; jj < nodes; jj++) '
          'fprintf(TRACE, " %.9g %.9g %.9g %.9g %.9g %.9g %.9g %.9g", S_i_E[jj], S_i_I[jj], r_i_E[jj], r_i_I[jj], '
          'bw_x_ex[jj], bw_f_ex[jj], bw_nu_ex[jj], bw_q_ex[jj]); fprintf(TRACE, "\\n"); fflush(TRACE); }'],
    960: ['{ int jj; fprintf(TRACE, "SAMPLE %d %d", BOLD_len, ts); for (jj = 0; jj < nodes; jj++) '
          'fprintf(TRACE, " %.9g %.9g %.9g %.9g %.9g %.9g", S_i_E[jj], S_i_I[jj], BOLD_ex[jj*BOLD_ts_len + BOLD_len], '
          'meanFR[jj], meanFR_INH[jj], J_i[jj]); fprintf(TRACE, "\\n"); fflush(TRACE); }'],
    989: ['{ int jj; fprintf(TRACE, "JI %d", BOLD_len); for (jj = 0; jj < nodes; jj++) '
          'fprintf(TRACE, " %.9g", J_i[jj]); fprintf(TRACE, "\\n"); fflush(TRACE); }'],
    1023: ['fprintf(TRACE, "FIT %d %.9g %.9g\\n", BOLD_len, fc_sim_fc_emp_cc, fc_sim_fc_emp_mse);',
           MAT % ("SIMFC", "sim_FC"), MAT % ("EMPFC", "emp_FC"),
           DUMP % ("LRE_BEFORE", "SC_cap_LRE_frac"), DUMP % ("FFI_BEFORE", "SC_cap_FFI_frac")],
    1270: [DUMP % ("LRE_AFTER", "SC_cap_LRE_frac"), DUMP % ("FFI_AFTER", "SC_cap_FFI_frac"), 'fflush(TRACE);'],
}
lines = open("orig.c").read().split("\n")
out = []
for i, line in enumerate(lines, start=1):
    out.append(line)
    out.extend("/*TRACE*/ " + s for s in INSERT.get(i, []))
open("traced.c", "w").write("\n".join(out))
