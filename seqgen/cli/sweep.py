"""`seqgen sweep SWEEP.toml`: a search space over `seqgen train` settings, run on Ray Tune."""

from collections import Counter
from pathlib import Path

import click

from seqgen.cli.base import cli, seqgen_command


@cli.command()
@click.argument("sweep_file", metavar="SWEEP.toml", type=click.Path(dir_okay=False))
@click.option("--output", "-o", type=click.Path(file_okay=False),
              help="Sweep directory (default: the file's `output`, else SWEEP.sweep here). Running the same sweep "
                   "into it again resumes it.")
@click.option("--address", metavar="HOST:PORT",
              help="Join this Ray cluster (started with `ray start --head`) instead of starting one on this machine.")
@click.option("--quiet", "-q", is_flag=True, help="No progress lines; the results table and summary only.")
@click.option("--verbose", "-v", count=True, help="Ray Tune's own progress reports (repeat for more).")
@seqgen_command
def sweep(sweep_file, output, address, quiet, verbose):
    """Train one model per point of the search space in SWEEP.toml (base `seqgen train`
    settings, a [space] of distributions over them, the search and the scheduler; see
    README "Sweeps"), in parallel on this machine's cores or a Ray cluster. Writes every
    trial's results to results.csv and results.json and the best checkpoint to best.npz in the
    sweep directory."""
    from seqgen.cli.train import _read_toml
    from seqgen.sweep import runner
    from seqgen.sweep.spec import SweepSpec

    runner.import_ray()  # says how to install Ray before anything else
    try:
        data = _read_toml(sweep_file)
    except click.BadParameter as e:
        e.param_hint = "SWEEP.toml"
        raise
    spec = SweepSpec.parse(data, source=sweep_file)
    output = Path(output or spec.output or f"{Path(sweep_file).stem}.sweep")
    click.echo(f"sweep {spec.name}: {spec.trials} trials into {output}", err=True)
    on_trial = None if quiet else _trial_ended
    result = runner.run(spec, output, address=address, verbose=min(verbose, 3), on_trial=on_trial)
    click.echo(runner.format_table(result.rows, result.columns))
    counts = Counter(r["status"] for r in result.rows)
    tally = ", ".join(f"{n} {status}" for status, n in counts.most_common())
    click.echo(f"{len(result.rows)} trials{' (resumed)' if result.resumed else ''}: {tally}")
    if result.best:
        point = ", ".join(f"{k}={runner.format_value(result.best[k])}" for k in spec.space)
        click.echo(f"best: trial {result.best['trial']} ({point}), validation loss "
                   f"{result.best['valid_loss']:.4f} nats/token at step {result.best['best_step']} "
                   f"-> {result.best_output}")
    click.echo(f"results: {result.tables[0]}, {result.tables[1]}")
    if not result.complete:
        click.echo(f"interrupted: run `seqgen sweep {sweep_file} -o {output}` again "
                   "to resume (finished trials are kept)", err=True)
        raise SystemExit(130)


def _trial_ended(trial_id, status, metrics, config):
    """One progress line per trial as it ends."""
    from seqgen.sweep.runner import format_value

    point = ", ".join(f"{k}={format_value(v)}" for k, v in config.items())
    if status == "error":
        click.echo(f"trial {trial_id} failed ({point})", err=True)
        return
    loss = metrics.get("valid_loss")
    how = "finished" if metrics.get("last") else "stopped early"
    click.echo(f"trial {trial_id} {how} at step {metrics.get('step')}: last validation loss "
               f"{format_value(loss, 'valid_loss')} ({point})", err=True)
