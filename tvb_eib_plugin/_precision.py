"""Matrix products at the precision of their operands, on every backend.

JAX lets an accelerator compute a float32 product at a lower internal precision by default:
TensorFloat-32 (10 mantissa bits) on NVIDIA GPUs since Ampere, bfloat16 passes on TPU.  Where it
does, that is a 1e-3 relative error, which a fit would absorb without a word, and a batch could
differ from its members run alone beyond float rounding.  Which products it takes depends on the
shape and the library (on an H200 the batched coupling matvec stayed at float32 accuracy; the
matrix-matrix products, e.g. the HRF BOLD over TRs, are those tensor cores take).  Every product in
the package therefore names ``FULL``.  On CPU, where float32 products are computed in float32
anyway, the compiled code is the same.
"""

from __future__ import annotations

import jax

FULL = jax.lax.Precision.HIGHEST
"""Products in the operands' own precision (float32 or float64), never TF32 or bfloat16."""


def matmul(a, b):
    """``a @ b`` at :data:`FULL` precision."""
    return jax.numpy.matmul(a, b, precision=FULL)
