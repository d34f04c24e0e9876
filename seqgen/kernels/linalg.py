"""Matrix products through numba's BLAS binding.

Every product in the training and sampling paths goes through here or through ``np.dot`` inside
another kernel, so one BLAS library (the one numba binds, via SciPy) serves them all. Mixing it
with NumPy's own BLAS would leave two thread pools spinning against each other on the same cores,
which made training 3-5x slower when measured.
"""

import numpy as np

from seqgen._numba import jit


@jit
def matmul(a, b, out):
    """out = a @ b for contiguous (C or F) 2-d arrays of one float dtype."""
    np.dot(a, b, out)
    return out
