"""How many threads seqgen uses, and how: one place, for every front end and sweep trial.

The policy, chosen by measurement on a shared 2-core machine (benchmarks/bench_busy.py):
training splits each batch into ``workers()`` row blocks that run the whole forward and backward
pass side by side on seqgen's own threads, each calling BLAS single-threaded. The blocks never
wait for each other inside a window and idle workers sleep on a queue, so a busy neighbour only
takes its share of the cores. OpenBLAS's own pool makes every per-step product wait for all its
threads and spins while it waits: beside one busy process it ran training ~100x slower.
"""

import os
import threading
from concurrent.futures import ThreadPoolExecutor

from seqgen.errors import ConfigError

_lock = threading.Lock()
_limit = None  # the cap given to limit_threads, if any
_pool = None  # (size, executor)
_blas_single = False


def threads_from_env():
    """$SEQGEN_THREADS as a whole number, None when unset; ConfigError when malformed."""
    value = os.environ.get("SEQGEN_THREADS")
    if not value:
        return None
    if not value.isdigit() or int(value) < 1:
        raise ConfigError(f"SEQGEN_THREADS must be a whole number >= 1, got {value!r}")
    return int(value)


def cores():
    """CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def workers():
    """Threads a training step may use: the cap (limit_threads, else $SEQGEN_THREADS), else the
    cores."""
    return _limit or threads_from_env() or cores()


def limit_threads(threads=None):
    """Cap seqgen's threads at ``threads`` (else $SEQGEN_THREADS; else leave them): the training
    workers, and the BLAS pools the kernels call (SciPy's OpenBLAS, loaded here first) through
    threadpoolctl, which works whenever it is called, unlike OPENBLAS_NUM_THREADS."""
    global _limit
    if threads is None:
        threads = threads_from_env()
        if threads is None:
            return
    _limit = threads
    _set_blas_threads(1 if _blas_single else threads)


def _set_blas_threads(n):
    import scipy.linalg.cython_blas  # noqa: F401  (loads the BLAS the numba kernels call)
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=n, user_api="blas")


def _single_threaded_blas():
    """From the first parallel step on, BLAS runs on the calling thread only."""
    global _blas_single
    if not _blas_single:
        _set_blas_threads(1)
        _blas_single = True


def parallel_map(fn, items):
    """[fn(item) for item in items], the items on up to workers() threads (BLAS single-threaded
    then). The calling thread runs the first item itself; the results keep the items' order."""
    items = list(items)
    n = min(workers(), len(items))
    if n <= 1:
        return [fn(item) for item in items]
    global _pool
    with _lock:
        _single_threaded_blas()
        if _pool is None or _pool[0] < n - 1:
            _pool = (n - 1, ThreadPoolExecutor(n - 1, thread_name_prefix="seqgen"))
        pool = _pool[1]
    futures = [pool.submit(fn, item) for item in items[1:]]
    first = fn(items[0])
    return [first] + [f.result() for f in futures]
