"""The random streams of a training run, all spawned from its one seed with numpy's
SeedSequence: independent of each other, and each recreated on its own when needed (a resumed
run, one epoch's shuffle). ``SeedSequence(seed, spawn_key=(i,))`` is the i-th child that
``SeedSequence(seed).spawn(...)`` gives; an epoch's shuffle is that child's child."""

import numpy as np

STREAMS = ("init", "split", "shuffle", "dropout")


def sequence(seed, stream, *sub):
    """The SeedSequence of one named stream (and sub-stream, e.g. an epoch) of ``seed``."""
    return np.random.SeedSequence(seed, spawn_key=(STREAMS.index(stream), *sub))


def generator(seed, stream, *sub):
    """A numpy Generator on one named stream of ``seed``."""
    return np.random.default_rng(sequence(seed, stream, *sub))
