"""How many BLAS threads the kernels may use: one place, for every front end and sweep trial."""

import os

from seqgen.errors import ConfigError


def threads_from_env():
    """$SEQGEN_THREADS as a whole number, None when unset; ConfigError when malformed."""
    value = os.environ.get("SEQGEN_THREADS")
    if not value:
        return None
    if not value.isdigit() or int(value) < 1:
        raise ConfigError(f"SEQGEN_THREADS must be a whole number >= 1, got {value!r}")
    return int(value)


def limit_threads(threads=None):
    """Cap the BLAS pools at ``threads`` (else $SEQGEN_THREADS; else leave them). Applied with
    threadpoolctl to the BLAS that the kernels call (SciPy's OpenBLAS, loaded here first), so it
    works whenever it is called, unlike OPENBLAS_NUM_THREADS, which is read only at load."""
    if threads is None:
        threads = threads_from_env()
        if threads is None:
            return
    import scipy.linalg.cython_blas  # noqa: F401  (loads the BLAS the numba kernels call)
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=threads, user_api="blas")
