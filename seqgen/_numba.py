"""numba options for every kernel, set in one place.

``cache=True`` writes compiled machine code next to the sources (or to NUMBA_CACHE_DIR), so a
second process loads it instead of recompiling. ``error_model="numpy"`` drops Python's
division-by-zero checks from the hot loops. Set ``NUMBA_DISABLE_JIT=1`` to run the kernels as
plain Python (slow; for coverage and debugging).
"""

import numba

JIT_OPTIONS = {"cache": True, "nogil": True, "error_model": "numpy"}


def jit(fn=None, *, inline=False):
    """Compile ``fn`` with seqgen's numba options. ``@jit(inline=True)``: numba pastes the
    function into each caller before typing instead of compiling and linking it on its own, which
    saves compile time on small helpers (every separately compiled function is optimised and
    turned into machine code again inside each of its callers)."""
    if fn is None:
        return lambda f: jit(f, inline=inline)
    return numba.njit(**JIT_OPTIONS, inline="always" if inline else "never")(fn)
