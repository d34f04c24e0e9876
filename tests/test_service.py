"""`seqgen serve` as a real process on a free loopback port, driven with the official `openai`
client, httpx and raw server-sent events. Every call has a timeout; every server is stopped."""

import base64
import io
import json
import signal
import threading
import time

import httpx
import mido
import openai
import pytest
from live_server import TIMEOUT, Server

from seqgen.generation.samples import draw, load_model, midi_bytes
from seqgen.options import SampleOptions


@pytest.fixture(scope="module")
def server():
    with Server("dinos", "chorale", "--max-tokens", "1000000") as s:
        yield s


@pytest.fixture(scope="module")
def limited():
    with Server("dinos", "--api-key", "sesame", "--max-batch", "1", "--max-queue", "1", "--max-tokens", "1000000",
              "--max-n", "4", "--max-body", "2000", "--request-timeout", "3", key="sesame") as s:
        yield s


def openai_client(server, key="unused"):
    return openai.OpenAI(base_url=server.url + "/v1", api_key=key, timeout=TIMEOUT, max_retries=0)


def local(model, **options):
    return draw(SampleOptions(**options), load_model(model))


def sse_events(response):
    """(event name, data) pairs of a streamed response."""
    event = "message"
    for line in response.iter_lines():
        if line.startswith("event: "):
            event = line[len("event: "):]
        elif line.startswith("data: "):
            yield event, line[len("data: "):]
            event = "message"


def test_openai_client_completions_equal_seqgen_sample(server):
    client = openai_client(server)
    r = client.completions.create(model="dinos", prompt="tyr", max_tokens=40, n=3, seed=7, temperature=0.9)
    expected = local("dinos", prime="tyr", include_prime=False, n=3, length=40, seed=7, temperature=0.9)
    assert [c.text for c in sorted(r.choices, key=lambda c: c.index)] == [s.text for s in expected.samples]
    assert all(c.finish_reason in ("stop", "length") for c in r.choices)
    assert r.usage.completion_tokens == sum(len(s.ids) for s in expected.samples)
    stream = client.completions.create(model="dinos", prompt="tyr", max_tokens=40, n=3, seed=7, temperature=0.9,
                                       stream=True)
    texts, finish = {}, {}
    for chunk in stream:
        for c in chunk.choices:
            texts[c.index] = texts.get(c.index, "") + c.text
            if c.finish_reason:
                finish[c.index] = c.finish_reason
    assert [texts[i] for i in range(3)] == [c.text for c in sorted(r.choices, key=lambda c: c.index)]
    assert finish == {c.index: c.finish_reason for c in r.choices}


def test_openai_stop_sequences_are_left_out_and_greedy_at_temperature_0(server):
    client = openai_client(server)
    full = client.completions.create(model="dinos", prompt="a", max_tokens=30, seed=3, stop=[])
    text = full.choices[0].text
    assert len(text) > 3
    cut = client.completions.create(model="dinos", prompt="a", max_tokens=30, seed=3, stop=[text[2:4]])
    assert cut.choices[0].text == text[:2] and cut.choices[0].finish_reason == "stop"
    streamed = "".join(c.choices[0].text for c in client.completions.create(
        model="dinos", prompt="a", max_tokens=30, seed=3, stop=[text[2:4]], stream=True) if c.choices)
    assert streamed == text[:2]
    greedy = [client.completions.create(model="dinos", prompt="ba", max_tokens=20, temperature=0, seed=s)
              .choices[0].text for s in (1, 2)]
    assert greedy[0] == greedy[1] == local("dinos", prime="ba", greedy=True, length=20,
                                           include_prime=False).samples[0].text


def test_concurrent_requests_share_a_batch_and_each_equals_seqgen_sample(server):
    requests = [dict(model="dinos", n=1 + k % 3, length=300, stop="", seed=100 + k, temperature=0.5 + 0.1 * k,
                     top_k=k % 4, prime="ab"[k % 2]) for k in range(12)]
    results = [None] * len(requests)

    def call(k):
        body = requests[k]
        with httpx.Client(base_url=server.url, timeout=TIMEOUT) as c:
            if k % 2:  # half of them streamed
                with c.stream("POST", "/v1/samples", json={**body, "stream": True}) as r:
                    events = list(sse_events(r))
                texts = {}
                for name, data in events:
                    if name == "message":
                        d = json.loads(data)
                        texts[d["sample"]] = texts.get(d["sample"], "") + d["text"]
                results[k] = [texts[i] for i in range(len(texts))]
            else:
                results[k] = [s["text"] for s in c.post("/v1/samples", json=body).json()["samples"]]

    threads = [threading.Thread(target=call, args=(k,)) for k in range(len(requests))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(TIMEOUT)
    assert server.health()["peak_streams"] > 3  # they did run together
    for k, body in enumerate(requests):
        expected = [s.text for s in local(**body).samples]
        assert results[k] == expected, k


def test_raw_sse_text_and_midi_note_events(server):
    with server.client() as c:
        with c.stream("POST", "/v1/samples", json={"model": "dinos", "seed": 5, "prime": "ty", "stream": True}) as r:
            assert r.headers["content-type"].startswith("text/event-stream")
            events = list(sse_events(r))
        pieces = "".join(json.loads(d)["text"] for name, d in events if name == "message")
        done = json.loads(events[-1][1])
        assert events[-1][0] == "done" and done["seed"] == 5
        assert pieces == done["samples"][0]["text"] == local("dinos", seed=5, prime="ty").samples[0].text
        with c.stream("POST", "/v1/samples", json={"model": "chorale", "seed": 2, "length": 40, "stream": True}) as r:
            events = list(sse_events(r))
        notes = [e for name, d in events if name == "message" for e in json.loads(d)["events"]]
        assert notes and {e["type"] for e in notes} <= {"note", "rest", "end"}
        assert any(e["type"] == "note" and 0 <= e["pitch"] < 128 and e["duration"] > 0 for e in notes)
        steps = [e["step"] for e in notes]
        assert steps == sorted(steps)
        expected = local("chorale", seed=2, length=40).samples[0]
        assert [e["token"] for e in notes if e["type"] != "end"] == expected.tokens


def test_samples_take_the_sampling_rules(server):
    """The rules travel through the service's batch as through seqgen sample, primer included in
    the history; a rule the model cannot take is a 400 naming it."""
    text_rules = {"repetition_penalty": 1.5, "repetition_window": 4, "no_repeat_ngram": 2}
    note_rules = {"min_pitch": 64, "max_pitch": 72}
    with server.client() as c:
        for body in ({"model": "dinos", "seed": 3, "n": 4, "prime": "tyr", **text_rules},
                     {"model": "chorale", "seed": 3, "n": 3, "length": 80, "format": "json", **note_rules}):
            r = c.post("/v1/samples", json=body)
            assert r.status_code == 200, r.text
            options = {k: v for k, v in body.items() if k not in ("model", "format")}
            expected = local(body["model"], **options).samples
            assert [s["text"] for s in r.json()["samples"]] == [s.text for s in expected]
        assert expected[0].text != local("chorale", seed=3, length=80).samples[0].text  # the rules did something
        streamed = c.post("/v1/samples", json={"model": "dinos", "seed": 3, "prime": "tyr", "stream": True,
                                               **text_rules})
        done = json.loads(list(sse_events(streamed))[-1][1])
        assert done["samples"][0]["text"] == local("dinos", seed=3, prime="tyr", **text_rules).samples[0].text
        r = c.post("/v1/samples", json={"model": "dinos", "max_polyphony": 4})
        assert r.status_code == 400 and r.json()["error"]["param"] == "max_polyphony"
        assert "MIDI models only" in r.json()["error"]["message"]
        r = c.post("/v1/samples", json={"model": "dinos", "repetition_penalty": 0.5})
        assert r.status_code == 400 and r.json()["error"]["param"] == "repetition_penalty"


def test_midi_responses_and_primer_bytes(server, tmp_path):
    ckpt = load_model("chorale")
    with server.client() as c:
        one = c.post("/v1/samples", json={"model": "chorale", "seed": 9, "length": 60, "tempo": 90})
        assert one.status_code == 200 and one.headers["content-type"] == "audio/midi"
        assert one.headers["x-seqgen-seed"] == "9"
        options = SampleOptions(seed=9, length=60, tempo=90)
        assert one.content == midi_bytes(ckpt.tokenizer, draw(options, ckpt).samples[0], options)
        several = c.post("/v1/samples", json={"model": "chorale", "seed": 9, "length": 60, "n": 2}).json()
        files = [mido.MidiFile(file=io.BytesIO(base64.b64decode(s["midi_base64"]))) for s in several["samples"]]
        assert len(files) == 2 and all(f.tracks for f in files)
        primed = c.post("/v1/samples", json={"model": "chorale", "seed": 1, "length": 10, "format": "json",
                                             "prime_midi": base64.b64encode(one.content).decode()})
        assert primed.status_code == 200, primed.text
        first = ckpt.tokenizer.read_prime(_write(tmp_path / "p.mid", one.content))
        assert primed.json()["samples"][0]["text"].split()[: len(first)] == first
        bad = c.post("/v1/samples", json={"model": "chorale", "prime_midi": base64.b64encode(b"not midi").decode()})
        assert bad.status_code == 400 and "prime_midi" in bad.json()["error"]["message"]


def _write(path, data):
    path.write_bytes(data)
    return path


def test_a_request_cannot_make_the_server_read_a_file(server):
    from seqgen.storage import shipped

    with server.client() as c:
        path = c.post("/v1/samples", json={"model": str(shipped.path("dinos"))})
        assert path.status_code == 404 and path.json()["error"]["code"] == "model_not_found"
        midi_path = c.post("/v1/samples", json={"model": "chorale", "prime_midi": "/etc/hosts"})
        assert midi_path.status_code == 400 and midi_path.json()["error"]["param"] == "prime_midi"


def test_bad_requests_are_4xx_naming_the_field(server):
    client = openai_client(server)
    with pytest.raises(openai.NotFoundError) as e:
        client.completions.create(model="nope", prompt="a")
    assert e.value.body["code"] == "model_not_found"
    with pytest.raises(openai.BadRequestError) as e:
        client.completions.create(model="dinos", prompt="a", top_p=1.5)
    assert e.value.body["param"] == "top_p"
    with pytest.raises(openai.BadRequestError) as e:
        client.completions.create(model="dinos", prompt="a", max_tokens=2_000_000)
    assert e.value.body["param"] == "max_tokens"
    with server.client() as c:
        r = c.post("/v1/completions", content=b'{"model": "dinos", ', headers={"content-type": "application/json"})
        assert r.status_code == 400 and r.json()["error"]["param"] == "body" and "JSON" in r.json()["error"]["message"]
        r = c.post("/v1/samples", json={"model": "dinos", "temprature": 2})
        assert r.status_code == 400 and r.json()["error"]["param"] == "temprature"
        r = c.post("/v1/samples", json={"model": "dinos", "beam": 2, "n": 3})
        assert r.status_code == 400 and "beam" in r.json()["error"]["message"]
        r = c.post("/v1/samples", json={"model": "dinos", "prime": "#!"})
        assert r.status_code == 400 and "vocabulary" in r.json()["error"]["message"]
        assert c.get("/nowhere").json()["error"]["type"] == "not_found_error"


def test_models_health_metrics(server):
    client = openai_client(server)
    models = {m.id: m for m in client.models.list()}
    assert set(models) == {"dinos", "chorale"}
    assert models["chorale"].model_extra["output"] == "midi" and models["dinos"].model_extra["tokenizer"] == "chars"
    with server.client() as c:
        c.post("/v1/samples", json={"model": "dinos", "seed": 1})
        text = c.get("/metrics").text
    for name in ("seqgen_requests_total", "seqgen_tokens_generated_total", "seqgen_batch_streams",
                 "seqgen_queue_length", "seqgen_time_to_first_token_seconds_bucket",
                 "seqgen_token_latency_seconds_bucket"):
        assert name in text
    assert 'seqgen_requests_total{path="/v1/samples",status="200"}' in text


def test_a_client_that_disconnects_stops_its_streams(server):
    with server.client() as c:
        with c.stream("POST", "/v1/samples", json={"model": "dinos", "length": 1_000_000, "stop": "", "n": 2,
                                                     "stream": True}) as r:
            events = sse_events(r)
            for _ in range(3):
                next(events)
            assert server.health()["active_streams"] == 2
    deadline = time.monotonic() + 10
    while server.health()["active_streams"] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.health()["active_streams"] == 0


def test_api_key(limited):
    r = httpx.post(limited.url + "/v1/completions", json={"model": "dinos"}, timeout=TIMEOUT)
    assert r.status_code == 401 and r.json()["error"]["type"] == "authentication_error"
    assert httpx.get(limited.url + "/v1/models", headers={"Authorization": "Bearer wrong"},
                     timeout=TIMEOUT).status_code == 401
    with pytest.raises(openai.AuthenticationError):
        openai_client(limited, "wrong").completions.create(model="dinos", prompt="a")
    ok = openai_client(limited, "sesame").completions.create(model="dinos", prompt="a", max_tokens=5, seed=1)
    assert ok.choices[0].text == local("dinos", prime="a", length=5, seed=1, include_prime=False).samples[0].text


def test_limits_queue_body_n_and_time(limited):
    long = {"model": "dinos", "length": 300_000, "stop": "", "stream": True}
    with limited.client() as a, limited.client() as b, limited.client() as c:
        with a.stream("POST", "/v1/samples", json=long) as ra:
            events = sse_events(ra)  # kept: dropping the iterator would close the response
            next(events)  # A holds the batch (max 1 stream)
            with b.stream("POST", "/v1/samples", json=long) as rb:
                assert rb.status_code == 200  # B waits in the queue (max 1)
                full = c.post("/v1/samples", json={"model": "dinos"})
                assert full.status_code == 429 and full.headers["retry-after"] == "1"
                assert full.json()["error"]["code"] == "queue_full"
        big = c.post("/v1/samples", json={"model": "dinos", "prime": "a" * 3000})
        assert big.status_code == 413 and big.json()["error"]["param"] == "body"
        many = c.post("/v1/samples", json={"model": "dinos", "n": 5})
        assert many.status_code == 400 and many.json()["error"]["param"] == "n"
        deadline = time.monotonic() + 10
        while limited.health()["active_streams"] + limited.health()["queued"] and time.monotonic() < deadline:
            time.sleep(0.05)
        # a million tokens take well over the 3 s limit on any CPU (about 10 s at 100k tokens/s)
        slow = c.post("/v1/samples", json={"model": "dinos", "length": 1_000_000, "stop": "", "n": 1})
        assert slow.status_code == 504 and slow.json()["error"]["code"] == "request_timeout"


def test_sigterm_drains_in_flight_requests_and_refuses_new_ones():
    s = Server("dinos", "--max-tokens", "100000")
    try:
        with s.client() as c:
            body = {"model": "dinos", "length": 40_000, "stop": "", "seed": 4, "stream": True}
            with c.stream("POST", "/v1/samples", json=body) as r:
                events = sse_events(r)
                next(events)
                s.proc.send_signal(signal.SIGTERM)
                time.sleep(0.5)
                with pytest.raises(httpx.ConnectError):
                    httpx.get(s.url + "/health", timeout=5)
                rest = list(events)
            assert rest[-1][0] == "done"
            assert len(json.loads(rest[-1][1])["samples"][0]["text"]) == 40_000
        assert s.proc.wait(30) in (0, -signal.SIGTERM)  # uvicorn re-raises the signal once drained
    finally:
        s.stop()


# -- the batch worker's hand-overs, without HTTP ---------------------------------------------------


def run_jobs(flush_seconds, bodies):
    """Submit jobs for the option dicts ``bodies`` to a Scheduler on dinos; returns, per job, the
    ids of each stream (from its items) and the number of hand-overs it got."""
    from seqgen.generation.batcher import Job, Scheduler
    from seqgen.generation.samples import plan

    ckpt = load_model("dinos")
    handed, jobs, ended = {}, [], threading.Event()

    def notify(due):  # from the worker thread, which also appends the items
        for job in due:
            handed[job] = handed.get(job, 0) + 1
        if sum(item[1] is None for job in jobs for item in job.items) == sum(job.n for job in jobs):
            ended.set()

    scheduler = Scheduler(ckpt.model, notify, name="dinos", flush_seconds=flush_seconds)
    for body in bodies:
        options = SampleOptions(**body)
        jobs.append(Job(plan(ckpt, options), options.seed, options.n))
    try:
        for job in jobs:
            scheduler.submit(job)
        assert ended.wait(TIMEOUT)
    finally:
        scheduler.close()
    results = []
    for job in jobs:
        ids = {i: [] for i in range(job.n)}
        for i, got, _ in job.items:
            if got is not None:
                ids[i] += got
        results.append(([ids[i] for i in range(job.n)], handed.get(job, 0)))
    return results


def test_the_worker_hands_tokens_over_coalesced_and_in_order():
    bodies = [dict(n=2, length=3000, stop="", seed=11, temperature=0.9), dict(n=1, length=2000, stop="", seed=12)]
    coalesced = run_jobs(3600.0, bodies)  # no interval ever passes: first tokens and ends only
    every_call = run_jobs(0.0, bodies)
    for body, (ids, handovers), (ids_each, handovers_each) in zip(bodies, coalesced, every_call):
        expected = [list(s.ids) for s in local("dinos", **body).samples]
        assert ids == ids_each == expected
        assert handovers <= 1 + body["n"]  # the first tokens, then each stream's end
        assert handovers_each >= body["length"] // 16  # at most 16 steps per kernel call


def test_pre_encoded_chunks_are_the_json_of_the_whole_chunk():
    from seqgen.service.app import Chunks, _sse

    def make(index, finish, text):
        return {"id": "cmpl-1", "model": 'a "model"', "choices": [
            {"text": text, "index": index, "logprobs": None, "finish_reason": finish}]}

    chunk = Chunks(make)
    for text, index, finish in [("", 0, None), ('ROMEO: "\\n"\n\té ♪ \x00', 3, None), ("end", 3, "stop"),
                                ("again", 0, None)]:
        assert chunk(text, index, finish) == _sse(make(index, finish, text))
        assert json.loads(chunk(text, index, finish)[len("data: "):])["choices"][0]["text"] == text


def test_a_long_stream_reassembles_exactly(server):
    body = {"model": "dinos", "prompt": "tri", "max_tokens": 1500, "n": 2, "seed": 21, "stop": [], "stream": True}
    with server.client() as c:
        with c.stream("POST", "/v1/completions", json=body) as r:
            events = [d for name, d in sse_events(r)]
    assert events[-1] == "[DONE]"
    texts = {0: "", 1: ""}
    for data in events[:-2]:
        for choice in json.loads(data)["choices"]:
            texts[choice["index"]] += choice["text"]
    expected = local("dinos", prime="tri", include_prime=False, n=2, length=1500, seed=21, stop="").samples
    assert [texts[0], texts[1]] == [s.text for s in expected]
    assert json.loads(events[-2])["usage"]["completion_tokens"] == 3000
