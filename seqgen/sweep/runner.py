"""A sweep on Ray Tune: each trial a normal ``api.train`` run in its own trial directory,
reporting validation loss at every evaluation; the best checkpoint copied out and a results
table written at the end. Ray is imported here only, when a sweep runs."""

from __future__ import annotations

import csv
import json
import logging
import os
import shutil
import signal
import tempfile
import threading
from pathlib import Path
from typing import NamedTuple

from seqgen.api import TrainEvents
from seqgen.errors import ConfigError, SeqgenError
from seqgen.storage.atomic import write_atomically
from seqgen.sweep.spec import SweepSpec, apply

INSTALL = "seqgen sweep needs Ray Tune, an optional extra: pip install 'seqgen[ray]'"
EXPERIMENT = "trials"  # Ray's experiment directory inside the sweep directory
METRIC = "valid_loss"
OBJECT_STORE = 128 << 20  # bytes; trials pass only small dicts through Ray's object store


def import_ray():
    """(ray, ray.tune), or SeqgenError saying how to install them. Usage statistics off: a
    sweep never reaches the internet."""
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    # Tune warns when it saves its state often; a sweep of short trials does, harmlessly
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    try:
        import ray
        from ray import tune
    except ImportError:
        raise SeqgenError(INSTALL) from None
    return ray, tune


class SweepResult(NamedTuple):
    rows: list  # one dict per trial, best validation loss first (see COLUMNS)
    columns: list  # column names of rows, in table order
    best: dict | None  # the best row; None when no trial reported a validation loss
    best_output: Path | None  # its best checkpoint, copied out of Ray's storage
    complete: bool  # every trial finished, stopped or failed (False: interrupted; run again to resume)
    resumed: bool
    tables: tuple  # results.csv and results.json


class _Report(TrainEvents):
    """Report every evaluation to Tune; when it is the trial's best so far, with that checkpoint."""

    def __init__(self, tune, node, threads):
        self.tune, self.node, self.threads = tune, node, threads

    def on_eval(self, trainer, record):
        from seqgen.api import best_path

        if METRIC not in record:
            raise ConfigError("trials are compared by validation loss; hold some data out (valid_fraction > 0)")
        o = trainer.options
        last = trainer.step >= trainer.total_steps or (o.patience is not None and trainer.bad_evals >= o.patience)
        metrics = {METRIC: record[METRIC], "step": record["step"], "train_loss": record["train_loss"],
                   "tokens_per_s": record["tokens_per_s"], "last": last, "node": self.node,
                   "threads": self.threads}
        if trainer.bad_evals:
            self.tune.report(metrics)
            return
        with tempfile.TemporaryDirectory() as folder:  # Ray persists a copy into the sweep directory
            shutil.copyfile(best_path(trainer.output), Path(folder) / "model.npz")
            self.tune.report(metrics, checkpoint=self.tune.Checkpoint.from_directory(folder))


def _trial(config, base=None, threads=1):
    """One trial: a normal training run in the trial's directory, its BLAS pool capped at the
    trial's CPU share."""
    import ray
    from ray import tune
    from threadpoolctl import threadpool_info

    from seqgen import api
    from seqgen.options import TrainOptions
    from seqgen.threads import limit_threads

    limit_threads(threads)
    blas = max((p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"), default=None)
    context = tune.get_context()
    folder = Path(context.get_trial_dir())
    folder.mkdir(parents=True, exist_ok=True)
    settings = {**apply(base, config), "output": str(folder / "model.npz")}
    options = TrainOptions.parse(settings, source=f"trial {context.get_trial_id()}")
    api.train(options, _Report(tune, ray.get_runtime_context().get_node_id(), blas))


def _trial_dirname(trial):
    return f"trial_{trial.trial_id}"


def _param_space(tune, spec: SweepSpec):
    make = {"grid": tune.grid_search, "choice": tune.choice, "uniform": lambda v: tune.uniform(*v),
            "loguniform": lambda v: tune.loguniform(*v), "randint": lambda v: tune.randint(*v)}
    return {key: make[kind](values) for key, dist in spec.space.items() for kind, values in dist.items()}


def _search(tune, spec: SweepSpec):
    if spec.search == "optuna":
        try:
            import optuna
            from ray.tune.search.optuna import OptunaSearch
        except ImportError:
            raise SeqgenError("search = \"optuna\" needs Optuna: pip install 'seqgen[ray]'") from None
        optuna.logging.set_verbosity(optuna.logging.WARNING)  # not a line per study and trial
        return OptunaSearch(seed=spec.seed)
    from ray.tune.search.basic_variant import BasicVariantGenerator

    return BasicVariantGenerator(random_state=spec.seed)


def _scheduler(spec: SweepSpec):
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler

    if spec.scheduler == "asha":  # time in evaluations: each report is one
        return ASHAScheduler(time_attr="training_iteration", max_t=spec.max_t,
                             grace_period=min(spec.grace_evals, spec.max_t), reduction_factor=spec.reduction_factor)
    return FIFOScheduler()


def _callbacks(tune, on_trial):
    """A Tune callback calling ``on_trial(trial_id, status, last_metrics, config)`` as trials end."""
    if on_trial is None:
        return []

    class TrialEnded(tune.Callback):
        def on_trial_complete(self, iteration, trials, trial, **info):
            on_trial(trial.trial_id, "ended", trial.last_result or {}, trial.config)

        def on_trial_error(self, iteration, trials, trial, **info):
            on_trial(trial.trial_id, "error", trial.last_result or {}, trial.config)

    return [TrialEnded()]


def _connect(ray, address):
    """Join the cluster at ``address``, or start a private one on this machine, bound to loopback
    and without the dashboard."""
    common = {"include_dashboard": False, "log_to_driver": False, "logging_level": logging.WARNING}
    if address:
        ray.init(address=address, **common)
    else:
        ray.init(address="local", num_cpus=os.cpu_count(), object_store_memory=OBJECT_STORE,
                 _node_ip_address="127.0.0.1", **common)


def _check_output(output: Path, spec: SweepSpec):
    """The sweep directory holds one sweep: rerunning the same file resumes it; a different
    one is refused rather than mixed in."""
    recorded = output / "sweep.json"
    current = spec.model_dump(mode="json", exclude={"output"})
    if recorded.exists():
        try:
            before = json.loads(recorded.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise ConfigError(f"output: {recorded}: unreadable ({e}); give a new output directory") from None
        if before != current:
            changed = sorted(k for k in current.keys() | before.keys() if current.get(k) != before.get(k))
            raise ConfigError(f"output: {output} holds a different sweep (changed: {', '.join(changed)}); "
                              "give a new output directory", fields=("output",))
        return
    if output.exists() and (not output.is_dir() or any(output.iterdir())):
        raise ConfigError(f"output: {output} exists and is not an empty sweep directory", fields=("output",))
    output.mkdir(parents=True, exist_ok=True)
    write_atomically(recorded, lambda tmp: Path(tmp).write_text(json.dumps(current, indent=1), encoding="utf-8"))


def run(spec: SweepSpec, output, address=None, verbose=0, on_trial=None) -> SweepResult:
    """Run (or resume) the sweep ``spec`` into the directory ``output``; on ``address``'s Ray
    cluster if given, else on a private Ray instance using this machine's cores. ``verbose``:
    Ray's own progress (0-3); ``on_trial(trial_id, "ended"|"error", last_metrics, config)`` is
    called as each trial ends."""
    output = Path(output).absolute()
    ray, tune = import_ray()
    _check_output(output, spec)
    sigint = signal.getsignal(signal.SIGINT)  # Tune installs its own and leaves it behind
    _connect(ray, address)
    try:
        trainable = tune.with_resources(tune.with_parameters(_trial, base=spec.train, threads=spec.threads),
                                        {"cpu": spec.threads})
        experiment = output / EXPERIMENT
        resumed = tune.Tuner.can_restore(str(experiment))
        if resumed:  # finished trials keep their results; unfinished ones start again
            tuner = tune.Tuner.restore(str(experiment), trainable=trainable, resume_unfinished=True,
                                       resume_errored=False, restart_errored=False)
        else:
            concurrency = spec.concurrency or (None if address else max(1, (os.cpu_count() or 1) // spec.threads))
            tuner = tune.Tuner(
                trainable, param_space=_param_space(tune, spec),
                tune_config=tune.TuneConfig(metric=METRIC, mode="min", num_samples=spec.samples,
                                            search_alg=_search(tune, spec), scheduler=_scheduler(spec),
                                            max_concurrent_trials=concurrency, trial_dirname_creator=_trial_dirname),
                run_config=tune.RunConfig(
                    name=EXPERIMENT, storage_path=str(output), verbose=verbose,
                    callbacks=_callbacks(tune, on_trial),
                    checkpoint_config=tune.CheckpointConfig(num_to_keep=1, checkpoint_score_attribute=METRIC,
                                                            checkpoint_score_order="min"),
                    failure_config=tune.FailureConfig(max_failures=0)))
        grid = tuner.fit()
        return _collect(grid, spec, output, resumed)
    finally:
        ray.shutdown()
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, sigint)


def _collect(grid, spec: SweepSpec, output: Path, resumed: bool) -> SweepResult:
    """Rows of the results table, the best checkpoint copied to OUTPUT/best.npz, the tables written."""
    columns = ["trial", "status", *spec.space, METRIC, "best_step", "step", "evals", "seconds", "node", "threads",
               "error"]
    rows, checkpoints = [], {}
    for result in grid:
        m = result.metrics or {}
        trial = m.get("trial_id") or Path(result.path).name.removeprefix("trial_")
        best = min(result.best_checkpoints or [], key=lambda c: c[1][METRIC], default=None)
        if result.error:
            status = "error"
        elif not m:
            status = "not run"
        else:
            status = "finished" if m.get("last") else "stopped early"
        row = {"trial": trial, "status": status, **{k: result.config.get(k) for k in spec.space},
               METRIC: best[1][METRIC] if best else None, "best_step": best[1]["step"] if best else None,
               "step": m.get("step"), "evals": m.get("training_iteration"),
               "seconds": round(m["time_total_s"], 1) if "time_total_s" in m else None,
               "node": m.get("node"), "threads": m.get("threads"),
               "error": _one_line(result.error) if result.error else None}
        rows.append(row)
        if best:
            checkpoints[trial] = best[0]
    rows.sort(key=lambda r: (r[METRIC] is None, r[METRIC] if r[METRIC] is not None else 0.0, r["trial"]))
    best = rows[0] if rows and rows[0][METRIC] is not None else None
    best_output = None
    if best:
        best_output = output / "best.npz"
        with checkpoints[best["trial"]].as_directory() as folder:
            write_atomically(best_output, lambda tmp: shutil.copyfile(Path(folder) / "model.npz", tmp))
    complete = grid.num_terminated + grid.num_errors == len(grid)
    tables = (output / "results.csv", output / "results.json")
    write_atomically(tables[0], lambda tmp: _write_csv(tmp, rows, columns))
    summary = {"name": spec.name, "trials": len(rows), "complete": complete, "metric": f"{METRIC} (nats/token)",
               "best": best, "best_output": str(best_output) if best_output else None, "rows": rows}
    write_atomically(tables[1], lambda tmp: Path(tmp).write_text(json.dumps(summary, indent=1), encoding="utf-8"))
    return SweepResult(rows, columns, best, best_output, complete, resumed, tables)


def _one_line(error) -> str:
    """The last line of a trial's error: seqgen's own message, not Ray's traceback."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[-1][:300] if lines else type(error).__name__


def _write_csv(path, rows, columns):
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)


def format_table(rows, columns, limit=None) -> str:
    """Rows as a Markdown table (losses to 4 decimals, node ids shortened); the error column only if
    a trial failed."""
    if not any(r.get("error") for r in rows):
        columns = [c for c in columns if c != "error"]

    shown = rows if limit is None else rows[:limit]
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(format_value(r.get(c), c) for c in columns) + " |" for r in shown]
    return "\n".join(lines)


def format_value(value, column=None) -> str:
    """A table cell: losses to 4 decimals, other floats to 4 digits, node ids shortened."""
    if value is None:
        return ""
    if column == METRIC:
        return f"{value:.4f}"
    if column == "node":  # Ray's node ids are 56 hex digits; 8 tell the nodes apart
        return str(value)[:8]
    return f"{value:.4g}" if isinstance(value, float) else str(value)
