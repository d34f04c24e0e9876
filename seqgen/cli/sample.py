"""`seqgen sample` and `seqgen models`."""

import click

from seqgen.cli.base import cli, seqgen_command


@cli.command()
@click.option("--model", "-m", "model_name", metavar="NAME|PATH",
              help="A checkpoint file or a shipped model (see `seqgen models`); default: the text model.")
@click.option("-n", "count", type=click.IntRange(1), default=1, show_default=True, help="Number of samples.")
@click.option("--length", type=int, default=200, show_default=True, help="Maximum tokens per sample.")
@click.option("--temperature", type=float, default=1.0, show_default=True, help="> 0; lower is more conservative.")
@click.option("--top-k", type=click.IntRange(0), default=0, show_default=True,
              help="Sample from the k likeliest (0: off).")
@click.option("--top-p", type=float, default=1.0, show_default=True, help="Nucleus sampling, in (0, 1].")
@click.option("--greedy", is_flag=True, help="Always take the likeliest token.")
@click.option("--beam", type=click.IntRange(1), help="Beam search of this width: the most likely continuations.")
@click.option("--prime", help="Text to start from.")
@click.option("--prime-midi", type=click.Path(exists=True, dir_okay=False), help="A .mid file to start from.")
@click.option("--unknown", type=click.Choice(["error", "skip", "unk"]), default="error", show_default=True,
              help="What to do with primer tokens the model does not know.")
@click.option("--stop", help="Stop once the output contains this text (default: the item separator).")
@click.option("--no-stop", is_flag=True, help="Never stop before --length.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--output", "-o", type=click.Path(), default="-", show_default=True,
              help="Text: a file, or - for stdout. MIDI models: a directory for one .mid per sample.")
@click.option("--no-prime-in-output", is_flag=True, help="Leave the primer out of the output.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--tempo", type=click.FloatRange(1, 1000), default=120.0, show_default=True,
              help="MIDI: beats per minute.")
@click.option("--program", type=click.IntRange(0, 127), default=0, show_default=True, help="MIDI: instrument.")
@click.option("--velocity", type=click.IntRange(1, 127), default=80, show_default=True, help="MIDI: note velocity.")
@seqgen_command
def sample(model_name, count, length, temperature, top_k, top_p, greedy, beam, prime, prime_midi, unknown, stop,
           no_stop, seed, output, no_prime_in_output, fmt, tempo, program, velocity):
    """Generate samples from a trained model, each token fed back in as the next input."""
    import json
    from pathlib import Path

    from seqgen.generation.sampler import check_sampling_options
    from seqgen.generation.samples import load_model, stream_text
    from seqgen.generation.samples import sample as draw
    from seqgen.storage.atomic import write_atomically

    check_sampling_options(count, length, temperature, top_k, top_p)
    ckpt = load_model(model_name)
    tok = ckpt.tokenizer
    stop = "" if no_stop else stop
    options = dict(length=length, prime=prime, temperature=temperature, top_k=top_k, top_p=top_p, greedy=greedy,
                   stop=stop, seed=seed, unknown=unknown, include_prime=not no_prime_in_output)
    midi = tok.output == "midi"
    if midi and output != "-" and Path(output).exists() and not Path(output).is_dir():
        raise click.BadParameter(f"{output}: MIDI samples go to a directory, and this is a file", param_hint="-o")
    if not midi and output != "-" and Path(output).is_dir():
        raise click.BadParameter(f"{output}: is a directory; give a file name", param_hint="-o")

    if fmt == "text" and output == "-" and count == 1 and not beam and not midi and prime_midi is None:
        for piece in stream_text(ckpt, **options):  # print as it is generated
            click.echo(piece, nl=False)
        click.echo()
        return

    samples = draw(ckpt, n=count, prime_midi=prime_midi, beam=beam, **options)
    paths = []
    if midi and output != "-":
        directory = Path(output)
        directory.mkdir(parents=True, exist_ok=True)
        width = max(3, len(str(count)))
        for i, s in enumerate(samples, 1):
            path = directory / f"sample_{i:0{width}d}.mid"
            write_atomically(path, lambda tmp, s=s: tok.write(s.tokens, tmp, tempo=tempo, program=program,
                                                                velocity=velocity))
            paths.append(str(path))
    if fmt == "json":
        records = [{"text": s.text, "logp": s.logp, "tokens": len(s.tokens)} for s in samples]
        for record, path in zip(records, paths):
            record["path"] = path
        text = json.dumps({"model": str(model_name or "default"), "seed": seed, "samples": records}, indent=2) + "\n"
    elif paths:
        text = "".join(f"{p}\n" for p in paths)
    else:
        sep = "\n\n" if any("\n" in s.text for s in samples) else "\n"
        text = sep.join(s.text for s in samples) + "\n"
    if output == "-" or (midi and fmt == "text"):
        click.echo(text, nl=False)
    else:
        target = Path(output) / "samples.json" if midi else Path(output)
        write_atomically(target, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


@cli.command()
@seqgen_command
def models():
    """List the models shipped with seqgen."""
    from seqgen.storage import shipped

    entries = shipped.catalog()
    if not entries:
        click.echo("no models are shipped with this build")
    for name, entry in entries.items():
        default = " (default)" if name == shipped.DEFAULT_TEXT_MODEL else ""
        loss = f"; validation loss {entry['valid_loss']:.3f} nats/token" if entry.get("valid_loss") else ""
        click.echo(f"{name}{default}: {entry['description']}{loss}")
