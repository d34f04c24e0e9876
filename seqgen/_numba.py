"""numba options for every kernel, set in one place.

``cache=True`` writes compiled machine code next to the sources (or to NUMBA_CACHE_DIR), so a
second process loads it instead of recompiling. ``error_model="numpy"`` drops Python's
division-by-zero checks from the hot loops. Set ``NUMBA_DISABLE_JIT=1`` to run the kernels as
plain Python (slow; for coverage and debugging).
"""

import importlib.util

import numba

JIT_OPTIONS = {"cache": True, "nogil": True, "error_model": "numpy"}


def jit(fn=None, *, inline=False):
    """Compile ``fn`` with seqgen's numba options. ``@jit(inline=True)``: numba pastes the
    function into each caller before typing instead of compiling and linking it on its own, which
    saves compile time on kernel helpers (every separately compiled function is optimised and
    turned into machine code again inside each of its callers); each call site costs a pass of
    numba's front end and another copy for LLVM, so a big helper should have few. Called from
    Python, an inline function compiles as usual."""
    if fn is None:
        return lambda f: jit(f, inline=inline)
    return numba.njit(**JIT_OPTIONS, inline="always" if inline else "never")(fn)


def _numpy_support_without_scipy_import():
    """Import numba's numpy support (which numba loads before it compiles or loads any cached
    function) without importing SciPy's linear algebra package, which costs ~0.3 s of every start.

    ``numba.np.arraymath`` calls ``numba.np.linalg.ensure_blas()`` on import only to record
    whether a BLAS exists, and ``ensure_blas`` imports ``scipy.linalg.cython_blas``, i.e. all of
    ``scipy.linalg``. The kernels do not need it then: numba's C helpers import
    ``scipy.linalg.cython_blas`` themselves at the first BLAS call (training's ``np.dot``), and
    compiling ``np.dot`` still runs the real ``ensure_blas``. The sampler never calls BLAS. So
    during that one import the check only asks whether SciPy is installed."""
    from numba.np import linalg

    if importlib.util.find_spec("scipy") is None or not hasattr(linalg, "ensure_blas"):
        return  # no SciPy: numba's own check says so
    real = linalg.ensure_blas
    linalg.ensure_blas = lambda: None
    try:
        from numba.np import arraymath
    finally:
        linalg.ensure_blas = real
    arraymath.ensure_blas = real


_numpy_support_without_scipy_import()
