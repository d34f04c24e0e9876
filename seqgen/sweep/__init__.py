"""Hyperparameter sweeps on Ray Tune (``seqgen sweep``): a search space over ``TrainOptions``,
each trial a normal ``api.train`` run. The sweep file is checked without Ray; Ray is imported
only when a sweep runs, so seqgen works without it (``pip install 'seqgen[ray]'`` adds it)."""

from seqgen.sweep.spec import SweepSpec


def run(spec, output, address=None, verbose=0, on_trial=None):
    """Run or resume a sweep; see ``seqgen.sweep.runner.run``."""
    from seqgen.sweep import runner

    return runner.run(spec, output, address=address, verbose=verbose, on_trial=on_trial)


__all__ = ["SweepSpec", "run"]
