"""Polyak averaging: an exponential moving average of the weights, kept beside the optimiser.

The average is what the run evaluates, checkpoints as the model and samples from; the weights
the optimiser updates are kept in the checkpoint's training arrays (``train/weights/<name>``)
so that a resumed run continues exactly.
"""

from contextlib import contextmanager

from seqgen.kernels.optim import average_update
from seqgen.training.optim import flat_views


class WeightAverage:
    """``WeightAverage(params, decay)``; ``update(params, t)`` after optimiser step t (from 1).

    Step t weighs the new weights by 1 − min(decay, (1 + t) / (10 + t)): the average follows the
    weights closely early on, when they move fast, and settles to ``decay`` (TensorFlow's
    ExponentialMovingAverage with num_updates)."""

    def __init__(self, params, decay):
        self.decay = decay
        self.weights = {name: p.copy(order="K") for name, p in params.items()}

    def update(self, params, t):
        weight = 1.0 - min(self.decay, (1.0 + t) / (10.0 + t))
        for name, p in params.items():
            avg, pf = flat_views(name, self.weights[name], p)
            average_update(avg, pf, weight)

    @contextmanager
    def swapped_into(self, model):
        """The model holds the averaged weights inside the block, its own ones again after it."""
        own = model.params
        model.params = dict(self.weights)
        try:
            yield own
        finally:
            model.params = own
