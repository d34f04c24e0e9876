"""Private numba kernels. They take contiguous arrays only and check nothing: the public
functions in ``seqgen.engine.model`` and ``seqgen.generation.sampler`` validate shapes and dtypes first.

Layout: time-major, C-contiguous, one row per batch element: (T, B, features). Weight matrices
are passed transposed (``WaaT`` is (n_a, G·n_a)), so every product is ``rows @ WT``.
"""
