"""`seqgen sample` and `seqgen models`."""

import sys

import click

from seqgen.cli.base import cli, given, in_flags, option_flags, seqgen_command
from seqgen.errors import ConfigError
from seqgen.options import SampleOptions

# the sampling rules' flags come from their SampleOptions fields
RULE_FIELDS = ("repetition_penalty", "repetition_window", "no_repeat_ngram", "max_polyphony", "min_pitch", "max_pitch")

MIDI_SUFFIXES = (".mid", ".midi")


def midi_targets(output, count, force):
    """The .mid paths for ``count`` samples: a .mid name is used as is for one sample and
    numbered (song_001.mid, ...) for several; anything else is a directory of sample_001.mid,
    ... Existing files are refused unless ``force``."""
    out = click.format_filename(output)
    width = max(3, len(str(count)))
    from pathlib import Path

    path = Path(out)
    if path.suffix.lower() in MIDI_SUFFIXES and not path.is_dir():
        if path.parent != Path("") and not path.parent.is_dir():
            raise click.BadParameter(f"{path.parent}: no such directory", param_hint="-o")
        targets = [path] if count == 1 else [path.with_name(f"{path.stem}_{i:0{width}d}{path.suffix}")
                                               for i in range(1, count + 1)]
    else:
        if path.exists() and not path.is_dir():
            raise click.BadParameter(f"{out}: MIDI samples go to a directory or a .mid file, and this is another "
                                     "file", param_hint="-o")
        targets = [path / f"sample_{i:0{width}d}.mid" for i in range(1, count + 1)]
    existing = [str(t) for t in targets if t.exists()]
    if existing and not force:
        more = f" and {len(existing) - 1} more" if len(existing) > 1 else ""
        raise click.BadParameter(f"{existing[0]}{more} already exist(s); use --force to overwrite, or another -o",
                                 param_hint="-o")
    return targets


@cli.command()
@click.option("--model", "-m", "model_name", metavar="NAME|PATH",
              help="A checkpoint file or a shipped model (see `seqgen models`); default: the text model.")
@click.option("-n", "count", type=int, default=1, show_default=True, help="Number of samples.")
@click.option("--length", type=int, default=200, show_default=True, help="Maximum tokens per sample.")
@click.option("--temperature", type=float, default=1.0, show_default=True, help="> 0; lower is more conservative.")
@click.option("--top-k", type=int, default=0, show_default=True, help="Sample from the k likeliest (0: off).")
@click.option("--top-p", type=float, default=1.0, show_default=True, help="Nucleus sampling, in (0, 1].")
@click.option("--greedy", is_flag=True, help="Always take the likeliest token.")
@click.option("--beam", type=int, help="Beam search of this width: the most likely continuations.")
@click.option("--prime", help="Text to start from.")
@click.option("--prime-midi", type=click.Path(exists=True, dir_okay=False), help="A .mid file to start from.")
@click.option("--unknown", type=click.Choice(["error", "skip", "unk"]), default="error", show_default=True,
              help="What to do with primer tokens the model does not know.")
@click.option("--stop", help="Stop once the output contains this text (default: the item separator).")
@click.option("--no-stop", is_flag=True, help="Never stop before --length.")
@click.option("--seed", type=int, help="Random seed; the same seed and options give the same samples, whatever -n "
                                       "is. Default: a fresh one each run, printed on stderr (and in JSON).")
@click.option("--output", "-o", type=click.Path(), default="-", show_default=True,
              help="Text: a file, or - for stdout. MIDI models: a directory (sample_001.mid, ...), or a .mid file "
                   "(numbered song_001.mid, ... when -n > 1); existing files are refused without --force.")
@click.option("--force", is_flag=True, help="Overwrite existing output files.")
@click.option("--no-prime-in-output", is_flag=True, help="Leave the primer out of the output.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="text: the samples (MIDI: the paths written); json: seed, samples with text, logp and token "
                   "count, and for MIDI models each file's path (or its bytes as base64 with -o -).")
@click.option("--tempo", type=float, help="MIDI: beats per minute (default: the MIDI primer's, else 120).")
@click.option("--program", type=int, default=0, show_default=True, help="MIDI: instrument (General MIDI, 0-127).")
@click.option("--velocity", type=int, default=80, show_default=True, help="MIDI: note velocity (1-127).")
@option_flags(SampleOptions, skip=tuple(set(SampleOptions.model_fields) - set(RULE_FIELDS)))
@seqgen_command
def sample(model_name, count, length, temperature, top_k, top_p, greedy, beam, prime, prime_midi, unknown, stop,
           no_stop, seed, output, force, no_prime_in_output, fmt, tempo, program, velocity, **rules):
    """Generate samples from a trained model, each token fed back in as the next input."""
    import base64
    import json
    from pathlib import Path

    from seqgen import api
    from seqgen.storage.atomic import write_atomically

    if no_stop and stop is not None:
        raise click.UsageError("give --stop TEXT or --no-stop, not both")
    fields = dict(model=model_name, n=count, length=length, temperature=temperature, top_k=top_k, top_p=top_p,
                  greedy=greedy, beam=beam, prime=prime, prime_midi=prime_midi, unknown=unknown,
                  stop="" if no_stop else stop, seed=seed, include_prime=not no_prime_in_output, tempo=tempo,
                  program=program, velocity=velocity, **given(rules))
    try:
        options = SampleOptions.parse(fields)
    except ConfigError as e:
        raise click.UsageError(in_flags(e)) from None
    ckpt = api.load(model_name)
    tok = ckpt.tokenizer
    midi = tok.output == "midi"
    targets = []
    if midi and output != "-":
        targets = midi_targets(output, count, force)
    elif not midi and output != "-":
        if Path(output).is_dir():
            raise click.BadParameter(f"{output}: is a directory; give a file name", param_hint="-o")
        if Path(output).exists() and not force:
            raise click.BadParameter(f"{output}: already exists; use --force to overwrite", param_hint="-o")
        api.check_writable(Path(output), "output")  # before sampling, not after
    report_seed = options.seed is None and not options.beam and fmt == "text"  # JSON records it
    if options.seed is None and not options.beam:
        options = options.replace(seed=api.fresh_seed())

    if fmt == "text" and output == "-" and count == 1 and not beam and not midi and prime_midi is None:
        for piece in api.stream_sample(options, ckpt):  # print as it is generated
            click.echo(piece, nl=False)
        click.echo()
        _report(report_seed, options.seed)
        return

    result = api.sample(options, ckpt)
    samples = result.samples
    for path, s in zip(targets, samples):
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(path, lambda tmp, s=s: api.write_midi_sample(ckpt, s, tmp, options))
    if fmt == "json":
        records = [{"text": s.text, "logp": s.logp, "tokens": len(s.tokens)} for s in samples]
        for record, path in zip(records, targets):
            record["path"] = str(path)
        if midi and output == "-":
            for record, s in zip(records, samples):
                record["midi_base64"] = base64.b64encode(api.midi_sample_bytes(ckpt, s, options)).decode("ascii")
        text = json.dumps({"model": str(model_name or "default"), "seed": result.seed, "samples": records},
                          indent=2) + "\n"
    elif targets:
        text = "".join(f"{p}\n" for p in targets)
    else:
        sep = "\n\n" if any("\n" in s.text for s in samples) else "\n"
        text = sep.join(s.text for s in samples) + "\n"
    if output == "-" or midi:
        click.echo(text, nl=False)
    else:
        write_atomically(Path(output), lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
    _report(report_seed, options.seed)


def _report(report_seed, seed):
    if report_seed:  # after the output, so a failed run prints only its error
        sys.stdout.flush()
        click.echo(f"seed {seed} (--seed {seed} repeats this run)", err=True)


@cli.command()
@seqgen_command
def models():
    """List the models shipped with seqgen."""
    from seqgen import api

    entries, default_model = api.models()
    if not entries:
        click.echo("no models are shipped with this build")
    for name, entry in entries.items():
        default = " (default)" if name == default_model else ""
        loss = f"; validation loss {entry['valid_loss']:.3f} nats/token" if entry.get("valid_loss") else ""
        click.echo(f"{name}{default}: {entry['description']}{loss}")
