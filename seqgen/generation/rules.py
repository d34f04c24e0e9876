"""SampleOptions' sampling rules resolved against a tokenizer: the per-stream ``Rules`` the
sampler kernel applies (seqgen/kernels/constraints.py).

The note rules (``min_pitch``, ``max_pitch``, ``max_polyphony``) need to know which token ids are
notes, of which pitch, and which close a time step: the tokenizer says so through
``Tokenizer.token_classes`` (docs/plugins.md); a tokenizer without notes refuses them.
"""

import numpy as np

from seqgen.errors import ConfigError
from seqgen.generation.sampler import Rules
from seqgen.kernels.constraints import BANNED, NOTE, STEP_END

NOTE_OPTIONS = ("max_polyphony", "min_pitch", "max_pitch")


def rules_for(tok, options):
    """The Rules of ``options`` (SampleOptions) for a fitted tokenizer, or None when it sets none.
    ConfigError naming the option when the tokenizer cannot apply it."""
    given = [name for name in NOTE_OPTIONS if getattr(options, name) is not None]
    if not given and options.repetition_penalty == 1.0 and not options.no_repeat_ngram:
        return None
    classes = None
    if given:
        found = tok.token_classes()
        if found is None:
            raise ConfigError(f"{given[0]}: applies to MIDI models only; this model's {tok.name!r} tokenizer has "
                              "no notes", fields=(given[0],))
        pitch = np.asarray(found.pitch, np.int64)
        classes = np.zeros(len(pitch), np.uint8)
        notes = pitch >= 0
        if options.min_pitch is not None or options.max_pitch is not None:
            low = 0 if options.min_pitch is None else options.min_pitch
            high = 127 if options.max_pitch is None else options.max_pitch
            inside = notes & (pitch >= low) & (pitch <= high)
            if not inside.any():
                name = "min_pitch" if options.min_pitch is not None else "max_pitch"
                span = f"{pitch[notes].min()}..{pitch[notes].max()}" if notes.any() else "none"
                raise ConfigError(f"{name}: no note of this model lies in {low}..{high} (its notes: {span})",
                                  fields=(name,))
            classes[notes & ~inside] |= BANNED
        if options.max_polyphony is not None:
            if found.step_end is None:
                raise ConfigError(f"max_polyphony: this model's notes come one at a time (the {tok.name!r} "
                                  "tokenizer's encoding has no steps of several notes; midi's poly has)",
                                  fields=("max_polyphony",))
            classes[notes] |= NOTE
            classes[np.asarray(found.step_end, bool)] |= STEP_END
    return Rules(options.repetition_penalty, options.repetition_window, options.no_repeat_ngram,
                 options.max_polyphony or 0, classes)
