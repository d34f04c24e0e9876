"""`seqgen serve`: the HTTP generation service."""

import click

from seqgen.cli.base import cli, seqgen_command


@cli.command()
@click.argument("models", nargs=-1, metavar="[MODEL]...")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind (loopback by default).")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True, help="Port to listen on.")
@click.option("--api-key", envvar="SEQGEN_API_KEY", help="Require 'Authorization: Bearer KEY' on every request "
                                                         "(or set SEQGEN_API_KEY).")
@click.option("--max-tokens", type=click.IntRange(1), default=4096, show_default=True, help="Tokens per sample.")
@click.option("--max-n", type=click.IntRange(1), default=64, show_default=True, help="Samples per request.")
@click.option("--max-prompt", type=click.IntRange(1), default=8192, show_default=True,
              help="Characters of a prompt or stop text.")
@click.option("--max-body", type=click.IntRange(1), default=1_000_000, show_default=True,
              help="Bytes of a request body.")
@click.option("--max-queue", type=click.IntRange(1), default=256, show_default=True,
              help="Requests waiting per model before 429.")
@click.option("--max-batch", type=click.IntRange(1), default=256, show_default=True,
              help="Streams stepped together per model.")
@click.option("--request-timeout", type=click.FloatRange(0.01), default=300.0, show_default=True,
              help="Seconds a request may take, queueing included.")
@click.option("--drain-timeout", type=click.FloatRange(0), default=30.0, show_default=True,
              help="Seconds SIGTERM waits for in-flight requests.")
@click.option("--log-level", type=click.Choice(["critical", "error", "warning", "info", "debug"]), default="info",
              show_default=True)
@seqgen_command
def serve(models, host, port, api_key, max_tokens, max_n, max_prompt, max_body, max_queue, max_batch,
          request_timeout, drain_timeout, log_level):
    """Serve models over HTTP (OpenAI-compatible /v1/completions, /v1/samples, /v1/models, /health,
    /metrics; docs at /docs). MODEL: checkpoint files or shipped names; default: every shipped model.
    SIGTERM stops accepting requests and finishes the ones in flight."""
    import sys
    from pathlib import Path

    import uvicorn

    # The batch worker and the event loop share the GIL; at the default 5 ms switch interval a
    # handler waits up to 5 ms per hand-over, which dominated time to first token.
    sys.setswitchinterval(0.0005)

    from seqgen import api
    from seqgen.service.app import Limits, create_app

    catalog, _ = api.models()
    names = list(models) or list(catalog)
    served = {}
    for spec in names:
        name = spec if spec in catalog and not Path(spec).exists() else Path(spec).stem
        if name in served:
            raise click.BadParameter(f"two models would be served as {name!r}", param_hint="MODEL")
        description = catalog[spec]["description"] if spec in catalog else f"checkpoint {spec}"
        served[name] = (api.load(spec), description)
    limits = Limits(max_tokens, max_n, max_prompt, max_body, max_queue, max_batch, request_timeout, api_key)
    app = create_app(served, limits)

    class Server(uvicorn.Server):
        def handle_exit(self, sig, frame):
            app.state.draining = True  # requests on open connections get 503 from here on
            super().handle_exit(sig, frame)

    config = uvicorn.Config(app, host=host, port=port, log_level=log_level, timeout_graceful_shutdown=drain_timeout,
                            lifespan="on")
    click.echo(f"serving {', '.join(served)} on http://{host}:{port} (docs: /docs)", err=True)
    Server(config).run()
