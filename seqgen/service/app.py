"""The FastAPI app: OpenAI-compatible completions, native samples, models, health, metrics.

Requests become the same option objects and plans as ``seqgen sample`` and join their model's
continuous batch (``seqgen.generation.batcher``); the server keeps no per-client state between
requests. Models are the ones the server was started with: a request names one, never a file.
"""

import asyncio
import base64
import binascii
import hmac
import json
import re
import time
import uuid
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.exceptions import HTTPException as StarletteHTTPException

from seqgen import __version__
from seqgen.errors import ConfigError, SeqgenError
from seqgen.generation.batcher import Job, QueueFull, Scheduler
from seqgen.generation.sampler import generate
from seqgen.generation.samples import Assembler, draw, fresh_seed, midi_bytes, midi_primer_tokens, plan, with_seed
from seqgen.options import SampleOptions
from seqgen.service.errors import (
    ServiceError,
    bad_request,
    error_body,
    error_response,
    to_service_error,
    unknown_model,
)
from seqgen.service.metrics import Metrics
from seqgen.service.predict import router as predict_router
from seqgen.service.schemas import CompletionRequest, SamplesRequest

ROUTES = ("/v1/completions", "/v1/samples", "/v1/predict", "/v1/models", "/health", "/metrics", "/docs",
          "/openapi.json", "/")
STATIC = Path(__file__).parent / "static"  # the web page (docs/service.md, "The page")
COMPLETION_FIELDS = {"length": "max_tokens", "prime": "prompt", "include_prime": "echo"}


@dataclass
class Limits:
    max_tokens: int = 4096  # per sample
    max_n: int = 64  # samples per request
    max_prompt: int = 8192  # characters of a text primer or stop text
    max_body: int = 1_000_000  # bytes of a request body (a MIDI primer is inside it)
    max_queue: int = 256  # requests waiting to join a model's batch
    max_batch: int = 256  # streams stepped together per model
    request_timeout: float = 300.0  # seconds, queueing included
    api_key: str | None = None


@dataclass
class Served:
    name: str
    ckpt: object
    description: str
    scheduler: Scheduler | None = None

    @property
    def midi(self):
        return self.ckpt.tokenizer.output == "midi"


class Guard:
    """ASGI middleware: refuses while draining (503), without the API key (401) and bodies over
    the limit (413), and counts requests by path and status."""

    def __init__(self, app, state):
        self.app, self.state = app, state

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        limits, status = self.state.limits, {}

        def count(code):  # once per request, when its status is known (before the client sees it)
            if not status.get("counted"):
                status["counted"] = True
                path = scope["path"] if scope["path"] in ROUTES else "other"
                self.state.metrics.requests.labels(path, str(code)).inc()

        async def counted_send(message):
            if message["type"] == "http.response.start":
                count(message["status"])
            await send(message)

        headers = dict(scope["headers"])
        err = None
        if self.state.draining:
            err = ServiceError(503, "the server is shutting down", "server_error", headers={"Connection": "close"})
        elif limits.api_key and not _page(scope["path"]) and not hmac.compare_digest(
                headers.get(b"authorization", b""), f"Bearer {limits.api_key}".encode()):
            err = ServiceError(401, "missing or wrong API key (send the header Authorization: Bearer KEY)",
                               "authentication_error", code="invalid_api_key")
        elif int(headers.get(b"content-length", b"0") or 0) > limits.max_body:
            err = ServiceError(413, f"the request body is over {limits.max_body} bytes", param="body")
        try:
            if err is not None:
                await error_response(err)(scope, receive, counted_send)
                return
            received = 0

            async def counted_receive():
                nonlocal received
                message = await receive()
                received += len(message.get("body", b""))
                if received > limits.max_body:
                    raise ServiceError(413, f"the request body is over {limits.max_body} bytes", param="body")
                return message

            await self.app(scope, counted_receive, counted_send)
        finally:
            count(500)  # no response was started


class Stream:
    """One request's jobs as the handler sees them: waits for the worker's items, enforces the
    deadline, notices a client that went away, and cancels its streams when left."""

    TICK = 0.5  # seconds between checks of the connection (and the deadline, whatever arrives)

    def __init__(self, app_state, served, jobs, request, started):
        self.state, self.served, self.jobs, self.request = app_state, served, jobs, request
        self.started, self.deadline = started, started + app_state.limits.request_timeout
        self.event = jobs[0].context
        self.first, self.last = None, None
        metrics = app_state.metrics
        self.tokens = metrics.tokens.labels(served.name)
        self.ttft = metrics.ttft.labels(served.name)
        self.token_latency = metrics.token_latency.labels(served.name)
        self.timer, self.ticked = None, False

    def _tick(self):  # a timer, not asyncio.wait_for per wake-up (which makes a task each time)
        self.ticked = True
        self.event.set()
        self._arm()

    def _arm(self):
        delay = max(0.0, min(self.TICK, self.deadline - time.monotonic()))
        self.timer = asyncio.get_running_loop().call_later(delay, self._tick)

    async def batches(self):
        """Yields, per wake-up, a list of (job index, stream, new ids, their logps, stream ended)."""
        self._arm()
        try:
            while any(job.open > 0 for job in self.jobs):
                await self.event.wait()
                self.event.clear()
                got, new_tokens = {}, 0
                for j, job in enumerate(self.jobs):
                    while job.items:
                        i, ids, logps = job.items.popleft()
                        if i < 0:
                            raise logps
                        entry = got.get((j, i))
                        if entry is None:
                            entry = got[j, i] = [[], [], False]
                        if ids is None:
                            job.open -= 1
                            entry[2] = True
                        else:
                            entry[0] += ids
                            entry[1] += logps
                            new_tokens += len(ids)
                if time.monotonic() >= self.deadline:
                    raise ServiceError(504, f"the request took longer than {self.state.limits.request_timeout:g} s",
                                       "timeout_error", code="request_timeout")
                if self.ticked:
                    self.ticked = False
                    if await self.request.is_disconnected():
                        return
                if got:
                    self._observe(new_tokens)
                    yield [(j, i, ids, lps, ended) for (j, i), (ids, lps, ended) in got.items()]
        finally:
            self.timer.cancel()
            self.cancel()

    def cancel(self):
        """Take every stream of the request out of the batch at the next step."""
        for job in self.jobs:
            job.cancel()

    def _observe(self, new_tokens):
        if not new_tokens:
            return
        now = time.monotonic()
        self.tokens.inc(new_tokens)
        if self.first is None:
            self.first = now
            self.ttft.observe(now - self.started)
            new_tokens -= 1
        elif new_tokens:
            self.token_latency.observe((now - self.last) / new_tokens)
        self.last = now


def _sse(data):
    return f"data: {json.dumps(data) if not isinstance(data, str) else data}\n\n".encode()


class Chunks:
    """The text events of one streamed request, byte for byte ``_sse(make(index, finish, text))``,
    with the constant part of each chunk encoded once and only the text encoded per event."""

    _MARK = "\x00seqgen-text\x00"  # json.dumps gives "\u0000...", which nothing else in a chunk is

    def __init__(self, make):
        self.make, self.templates = make, {}

    def __call__(self, text, index, finish=None):
        template = self.templates.get((index, finish))
        if template is None:
            before, after = json.dumps(self.make(index, finish, self._MARK)).split(json.dumps(self._MARK))
            template = self.templates[index, finish] = (f"data: {before}".encode(), f"{after}\n\n".encode())
        return template[0] + json.dumps(text).encode() + template[1]


def _note_events(tokens, clock):
    """MIDI tokens -> note events on the grid (melody "n60_d4"/"r_d2", poly "p60"/"h60"/"<STEP>")."""
    events = []
    for token in tokens:
        melody = re.fullmatch(r"(?:n(\d+)|r)_d(\d+)", token)
        poly = re.fullmatch(r"([ph])(\d+)", token)
        event = {"token": token, "step": clock[0]}
        if melody:
            duration = int(melody.group(2))
            if melody.group(1):
                event.update(type="note", pitch=int(melody.group(1)), duration=duration)
            else:
                event.update(type="rest", duration=duration)
            clock[0] += duration
        elif poly:
            event.update(type="note_on" if poly.group(1) == "p" else "hold", pitch=int(poly.group(2)))
        elif token == "<STEP>":
            event.update(type="step")
            clock[0] += 1
        else:
            event.update(type="end" if token == "<END>" else "other")
        events.append(event)
    return events


def create_app(models, limits=None):
    """models: {name: (Checkpoint, description)} in the order to list them (the first is the default)."""
    limits = limits or Limits()
    served = {name: Served(name, ckpt, desc) for name, (ckpt, desc) in models.items()}
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app):
        loop = asyncio.get_running_loop()

        def wake(jobs):
            for job in jobs:
                job.wake_pending = False
                job.context.set()

        def notify(jobs):  # from the worker: one wake-up in flight per job, so a busy loop is not flooded
            due = [job for job in jobs if not job.wake_pending]
            for job in due:
                job.wake_pending = True
            if due:
                loop.call_soon_threadsafe(wake, due)

        for s in served.values():  # compile or load the kernels before the first request
            if s.ckpt.model.config.task != "lm":
                continue  # a tagger or classifier: POST /v1/predict, no batch
            await asyncio.to_thread(generate, s.ckpt.model, 1, 2, [0], seed=0)
            s.scheduler = Scheduler(s.ckpt.model, notify, limits.max_batch, limits.max_queue, s.name)
            metrics.watch(s.name, s.scheduler)
        yield
        app.state.draining = True
        for s in served.values():
            s.scheduler.close()

    app = FastAPI(title="seqgen", version=__version__, lifespan=lifespan,
                  description="Samples from seqgen models; OpenAI-compatible completions. See docs/service.md.")
    app.state.limits, app.state.metrics, app.state.draining, app.state.served = limits, metrics, False, served
    app.add_middleware(Guard, state=app.state)

    async def handle(request, exc):
        return error_response(exc)

    for exc_type in (ServiceError, RequestValidationError, StarletteHTTPException, SeqgenError, Exception):
        app.add_exception_handler(exc_type, handle)

    def lookup(name):
        s = next(iter(served.values())) if name is None else served.get(name)
        if s is None:
            raise unknown_model(name, list(served))
        if s.scheduler is None:  # a tagger or classifier
            raise bad_request(f"{s.name} is a {s.ckpt.model.config.task} model: it labels, it does not generate "
                              "(use POST /v1/predict)", "model")
        return s

    def check_limits(options, names=None):
        names = names or {}
        if options.length > limits.max_tokens:
            raise bad_request(f"at most {limits.max_tokens} tokens per sample here", names.get("length", "length"))
        if options.n > limits.max_n:
            raise bad_request(f"at most {limits.max_n} samples per request here", names.get("n", "n"))
        if options.prime and len(options.prime) > limits.max_prompt:
            raise bad_request(f"at most {limits.max_prompt} characters here", names.get("prime", "prime"))

    def submit(s, plans, options, seed):
        jobs, event = [], asyncio.Event()
        try:
            for p in plans:
                job = Job(p, seed, options.n, context=event)
                s.scheduler.submit(job)
                jobs.append(job)
        except QueueFull:
            for job in jobs:
                job.cancel()
            raise
        return jobs

    # -- OpenAI completions --------------------------------------------------------------------

    @app.post("/v1/completions")
    async def completions(body: CompletionRequest, request: Request):
        started = time.monotonic()
        s = lookup(body.model)
        if s.midi:
            raise bad_request(f"{s.name} writes MIDI; use POST /v1/samples", "model")
        if body.logprobs is not None:
            raise bad_request("not supported by seqgen", "logprobs")
        prompts = [body.prompt] if isinstance(body.prompt, str) else body.prompt
        if not prompts or not all(isinstance(p, str) for p in prompts):
            raise bad_request("must be a string or a list of strings", "prompt")
        stops = [body.stop] if isinstance(body.stop, str) else body.stop
        if stops is not None and (len(stops) > 4 or any(len(x) > limits.max_prompt for x in stops)):
            raise bad_request("at most 4 stop sequences, each at most {limits.max_prompt} characters", "stop")
        temperature = 1.0 if body.temperature is None else body.temperature
        fields = dict(n=body.n, length=body.max_tokens or 16, temperature=temperature or 1.0,
                      greedy=temperature == 0, top_p=1.0 if body.top_p is None else body.top_p,
                      seed=body.seed if body.seed is not None else fresh_seed(), include_prime=body.echo)
        try:
            options = SampleOptions.parse(fields)
        except ConfigError as e:
            raise _renamed(e, COMPLETION_FIELDS) from None
        if options.n * len(prompts) > limits.max_n:
            raise bad_request(f"at most {limits.max_n} choices (n x prompts) per request here", "n")
        check_limits(options, COMPLETION_FIELDS)
        for p in prompts:
            check_limits(options.replace(prime=p or None), COMPLETION_FIELDS)
        plans = [plan(s.ckpt, options.replace(prime=p or None), stops=stops) for p in prompts]
        jobs = submit(s, plans, options, options.seed)
        stream = Stream(app.state, s, jobs, request, started)
        tok = s.ckpt.tokenizer
        asm = {(j, i): Assembler(tok, p, strip_stop=True) for j, p in enumerate(plans) for i in range(options.n)}
        cid, created = f"cmpl-{uuid.uuid4().hex}", int(time.time())
        head = {"id": cid, "object": "text_completion", "created": created, "model": s.name,
                "system_fingerprint": f"seqgen-{__version__}"}

        def choice(j, i, text, finish):
            return {"text": text, "index": j * options.n + i, "logprobs": None, "finish_reason": finish}

        def usage():
            completion = sum(len(a.ids) for a in asm.values())
            prompt = sum(len(p.prime_ids) for p in plans) if any(prompts) else 0
            return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}

        if body.stream:
            chunk = Chunks(lambda index, finish, text: {**head, "choices": [
                {"text": text, "index": index, "logprobs": None, "finish_reason": finish}]})

            async def events():
                try:
                    for (j, i), a in asm.items():
                        if a.prime_text and body.echo:
                            yield chunk(a._emit(len(a.prime_text)), j * options.n + i)
                    async for got in stream.batches():
                        out = []  # one write per wake-up: every stream's new text since the last
                        for j, i, ids, lps, ended in got:
                            a = asm[j, i]
                            if a.finished:
                                continue
                            piece = a.feed(ids, lps)
                            if a.finished:
                                jobs[j].stop(i)
                            if ended or a.finished:
                                piece += a.close()
                            finish = a.finish if a.finished else None
                            if piece or finish:
                                out.append(chunk(piece, j * options.n + i, finish))
                        if out:
                            yield b"".join(out)
                        if all(a.finished for a in asm.values()):
                            break
                    yield _sse({**head, "choices": [], "usage": usage(), "seed": options.seed}) + _sse("[DONE]")
                except Exception as e:  # noqa: BLE001  (headers are sent: the error goes in the stream)
                    yield _sse(error_body(to_service_error(e)))
                finally:
                    stream.cancel()

            return StreamingResponse(events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})

        await _collect(stream, lambda j, i: asm[j, i], jobs)
        choices = [choice(j, i, a.text, a.finish) for (j, i), a in asm.items()]
        return {**head, "choices": choices, "usage": usage(), "seed": options.seed}

    # -- native samples ------------------------------------------------------------------------

    @app.post("/v1/samples")
    async def samples(body: SamplesRequest, request: Request):
        started = time.monotonic()
        s = lookup(body.model)
        options = body.options()
        check_limits(options)
        if options.stop and len(options.stop) > limits.max_prompt:
            raise bad_request(f"at most {limits.max_prompt} characters here", "stop")
        tok = s.ckpt.tokenizer
        prime_tokens = None
        if body.prime_midi is not None:
            if not s.midi:
                raise bad_request(f"{s.name} is a text model; give a text primer", "prime_midi")
            try:
                data = base64.b64decode(body.prime_midi, validate=True)
            except (binascii.Error, ValueError):
                raise bad_request("not valid base64", "prime_midi") from None
            prime_tokens, primed = await asyncio.to_thread(midi_primer_tokens, tok, data)
            if options.tempo is None and "tempo" in primed:
                options = options.replace(tempo=primed["tempo"])
        if options.beam:
            if body.stream:
                raise bad_request("beam search returns whole sequences; it cannot stream", "stream")
            result = await asyncio.wait_for(asyncio.to_thread(draw, options, s.ckpt, prime_tokens),
                                            timeout=limits.request_timeout)
            return _samples_response(s, body, options, result.seed, result.samples)
        options = with_seed(options)
        p = plan(s.ckpt, options, prime_tokens)
        jobs = submit(s, [p], options, options.seed)
        stream = Stream(app.state, s, jobs, request, started)
        asm = [Assembler(tok, p) for _ in range(options.n)]
        clocks = [[0] for _ in asm]  # MIDI: each sample's position on the grid

        if body.stream:
            text_chunk = Chunks(lambda index, finish, text: {"sample": index, "text": text})

            def event(i, piece, tokens):
                return _sse(_event(s, i, piece, tokens, clocks[i])) if s.midi else text_chunk(piece, i)

            async def events():
                try:
                    for i, a in enumerate(asm):
                        if a.prime_text:
                            yield event(i, a._emit(len(a.prime_text)), list(p.shown_prime))
                    async for got in stream.batches():
                        out = []  # one write per wake-up: every stream's new text since the last
                        for _, i, ids, lps, ended in got:
                            a = asm[i]
                            if a.finished:
                                continue
                            before = len(a.tokens)
                            piece = a.feed(ids, lps)
                            if a.finished:
                                jobs[0].stop(i)
                            if ended:
                                piece += a.close()
                            if piece or len(a.tokens) > before:
                                out.append(event(i, piece, a.tokens[before:]))
                        if out:
                            yield b"".join(out)
                        if all(a.finished for a in asm):
                            break
                    done = {"seed": options.seed, "samples": [_record(a.sample()) for a in asm]}
                    yield b"event: done\n" + _sse(done)
                except Exception as e:  # noqa: BLE001
                    yield b"event: error\n" + _sse(error_body(to_service_error(e)))
                finally:
                    stream.cancel()

            return StreamingResponse(events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})

        await _collect(stream, lambda j, i: asm[i], jobs)
        return _samples_response(s, body, options, options.seed, [a.sample() for a in asm])

    # -- models, health, metrics ---------------------------------------------------------------

    @app.get("/v1/models")
    async def list_models():
        return {"object": "list", "data": [
            {"id": s.name, "object": "model", "created": 0, "owned_by": "seqgen", "description": s.description,
             "tokenizer": s.ckpt.tokenizer.name, "output": s.ckpt.tokenizer.output,
             "cell": s.ckpt.model.config.cell,
             "task": s.ckpt.model.config.task}  # lm: /v1/completions and /v1/samples; tag, classify: /v1/predict
            for s in served.values()]}

    @app.get("/", include_in_schema=False)
    async def page():
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/health")
    async def health():
        return {"status": "draining" if app.state.draining else "ok", "models": {
            s.name: {"active_streams": s.scheduler.active_streams, "queued": s.scheduler.queued,
                     "peak_streams": s.scheduler.peak, "steps": s.scheduler.steps}
            for s in served.values() if s.scheduler is not None}}

    @app.get("/metrics")
    async def prometheus():
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    app.include_router(predict_router)
    return app


async def _collect(stream, assembler, jobs):
    """Run a non-streamed request to its end: every stream's Assembler fed, the rest cancelled."""
    try:
        async for got in stream.batches():
            for j, i, ids, lps, ended in got:
                a = assembler(j, i)
                if not a.finished:
                    a.feed(ids, lps)
                    if a.finished:
                        jobs[j].stop(i)
                if ended:
                    a.close()
            if all(a.finished for a in (assembler(j, i) for j, job in enumerate(jobs) for i in range(job.n))):
                break
        if not all(assembler(j, i).finished for j, job in enumerate(jobs) for i in range(job.n)):
            raise ServiceError(499, "the client went away", code="client_closed")
    finally:
        stream.cancel()


def _page(path):
    """The page and its assets hold no secrets and are served without the API key, so the page can ask for it."""
    return path == "/" or path.startswith("/static/")


def _renamed(error, names):
    message = str(error)
    for field, name in names.items():
        message = re.sub(rf"(^|; ){field}:", rf"\g<1>{name}:", message)
    param = message.split(":", 1)[0]
    return ServiceError(400, message, param=param)


def _event(s, i, piece, tokens, clock):
    if s.midi:
        return {"sample": i, "events": _note_events(tokens, clock)}
    return {"sample": i, "text": piece}


def _record(sample):
    return {"text": sample.text, "logp": sample.logp, "tokens": len(sample.tokens), "finish": sample.finish}


def _samples_response(s, body, options, seed, samples):
    if not s.midi:
        return {"model": s.name, "seed": seed, "samples": [_record(x) for x in samples]}
    tok = s.ckpt.tokenizer
    if len(samples) == 1 and body.format == "auto":
        data = midi_bytes(tok, samples[0], options)
        headers = {"Content-Disposition": 'attachment; filename="sample.mid"'}
        if seed is not None:
            headers["X-Seqgen-Seed"] = str(seed)
        return Response(data, media_type="audio/midi", headers=headers)
    records = [{**_record(x), "midi_base64": base64.b64encode(midi_bytes(tok, x, options)).decode("ascii")}
               for x in samples]
    return JSONResponse({"model": s.name, "seed": seed, "samples": records})
