"""How many threads seqgen uses, and how: one place, for every front end and sweep trial.

The policy, chosen by measurement on a shared 2-core machine (benchmarks/bench_busy.py):
training splits each batch into two row blocks that run the whole forward and backward pass
side by side on seqgen's threads (one per core), each calling BLAS single-threaded. The blocks
never wait for each other inside a window and idle workers sleep on a queue, so a busy
neighbour only takes its share of the cores. OpenBLAS's own pool makes every per-step product
wait for all its threads and spins while it waits: beside one busy process it ran training
~100x slower. Backing off to one thread while other processes run was tried and measured
worse: seqgen's share of a contended machine grows with its runnable threads.
"""

import os
import threading
from concurrent.futures import ThreadPoolExecutor

from seqgen.errors import ConfigError

_lock = threading.Lock()
_limit = None  # the cap given to limit_threads, if any
_pool = None  # (size, executor)
_blas = None  # threadpoolctl controller of the BLAS pools, made on first use
_parallel = 0  # parallel_map calls running: BLAS is single-threaded while any is
_saved = []  # the BLAS thread counts to restore after them


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
    with _lock:
        if not _parallel:
            _blas_controller().limit(limits=threads)


def _blas_controller():
    global _blas
    if _blas is None:
        import scipy.linalg.cython_blas  # noqa: F401  (loads the BLAS the numba kernels call)
        from threadpoolctl import ThreadpoolController

        _blas = ThreadpoolController().select(user_api="blas")
    return _blas


def _blas_threads(n):
    """Set the BLAS pools to n threads (cheap once the controller exists)."""
    for lib in _blas_controller().lib_controllers:
        lib.set_num_threads(n)


def parallel_map(fn, items):
    """[fn(item) for item in items], the items on up to workers() threads, BLAS single-threaded
    meanwhile. The calling thread runs the first item itself; the results keep the items' order."""
    items = list(items)
    n = min(workers(), len(items))
    if n <= 1:
        return [fn(item) for item in items]
    global _pool, _parallel, _saved
    with _lock:
        if _pool is None or _pool[0] < n - 1:
            _pool = (n - 1, ThreadPoolExecutor(n - 1, thread_name_prefix="seqgen"))
        pool = _pool[1]
        if _parallel == 0:
            _saved = [lib.num_threads for lib in _blas_controller().lib_controllers]
            _blas_threads(1)
        _parallel += 1
    try:
        futures = [pool.submit(fn, item) for item in items[1:]]
        first = fn(items[0])
        return [first] + [f.result() for f in futures]
    finally:
        with _lock:
            _parallel -= 1
            if _parallel == 0:
                for lib, count in zip(_blas_controller().lib_controllers, _saved):
                    lib.set_num_threads(count)
