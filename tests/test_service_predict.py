"""POST /v1/predict on a real `seqgen serve` with a tiny tagger and classifier (trained in seconds
as in tests/test_tasks.py) and a language model: labels equal `api.predict`'s, errors in the
service's shape. Every call has a timeout; every server is stopped."""

import httpx
import pytest
from live_server import TIMEOUT, Server
from test_tasks import _books_tsv, _look_ahead_conll, _train

from seqgen import api
from seqgen.options import PredictOptions


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    d = tmp_path_factory.mktemp("predict")
    tag_corpus = _look_ahead_conll(d / "tag.conll", 80, 0)
    _train(d, tag_corpus, None, "tagger", steps=60, eval_every=60, valid_fraction=0.0, bidirectional=True)
    clf_corpus = _books_tsv(d / "books.tsv", 80, 0)
    _train(d, clf_corpus, None, "books", tokenizer="labelled", task="classify", steps=60, eval_every=60,
           valid_fraction=0.0)
    return d


@pytest.fixture(scope="module")
def server(trained):
    with Server(str(trained / "tagger.npz"), str(trained / "books.npz"), "dinos", "--max-tokens", "50",
                "--max-prompt", "100") as s:
        yield s


def post(server, body, **kw):
    return httpx.post(server.url + "/v1/predict", json=body, headers=server.headers, timeout=TIMEOUT, **kw)


def error(response, status, param):
    assert response.status_code == status, response.text
    err = response.json()["error"]
    assert err["param"] == param, err
    assert err["message"] and "Traceback" not in err["message"]
    return err


def test_tag_labels_equal_seqgen_predict(server, trained):
    expected = api.predict(PredictOptions(model=str(trained / "tagger.npz"), file=trained / "tag.conll"))
    tokens = [p.tokens for p in expected.items[:40]] + [["a", "zebra", "b"]]  # "zebra": unseen -> <UNK>
    r = post(server, {"model": "tagger", "items": tokens})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["model"] == "tagger" and body["task"] == "tag" and len(body["items"]) == len(tokens)
    local = api.predict_items(api.load(trained / "tagger.npz"), tokens)
    assert [p.labels for p in expected.items[:40]] == [p.labels for p in local.items[:40]]
    for got, want, toks in zip(body["items"], local.items, tokens):
        assert got["tokens"] == toks
        assert got["labels"] == want.labels and len(got["labels"]) == len(toks)
        assert got["probability"] == want.probability
        assert all(0 < p <= 1 for p in got["probability"])
    assert {label for item in body["items"] for label in item["labels"]} == {"B-A", "O"}  # it learnt something


def test_classify_labels_equal_seqgen_predict(server, trained):
    expected = api.predict(PredictOptions(model=str(trained / "books.npz"), file=trained / "books.tsv"))
    texts = [p.text for p in expected.items[:40]] + ["x never seen words"]
    r = post(server, {"model": "books", "items": texts})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["task"] == "classify" and len(body["items"]) == len(texts)
    assert [i["label"] for i in body["items"][:40]] == [p.labels for p in expected.items[:40]]
    assert [i["probability"] for i in body["items"][:40]] == [p.probability for p in expected.items[:40]]
    assert [i["text"] for i in body["items"]] == texts
    assert all(0 < i["probability"] <= 1 for i in body["items"])
    assert {i["label"] for i in body["items"]} == {"first", "second"}


def test_wrong_model_kinds(server):
    error(post(server, {"model": "dinos", "items": ["abc"]}), 400, "model")
    err = error(post(server, {"model": "nope", "items": [["a"]]}), 404, "model")
    assert err["code"] == "model_not_found"
    for path, body in (("/v1/completions", {"model": "tagger", "prompt": "a", "max_tokens": 3}),
                       ("/v1/samples", {"model": "books", "length": 3})):
        r = httpx.post(server.url + path, json=body, timeout=TIMEOUT)
        err = error(r, 400, "model")
        assert "/v1/predict" in err["message"]
    health = httpx.get(server.url + "/health", timeout=TIMEOUT).json()
    assert health["status"] == "ok" and list(health["models"]) == ["dinos"]
    tasks = {m["id"]: m["task"] for m in httpx.get(server.url + "/v1/models", timeout=TIMEOUT).json()["data"]}
    assert tasks == {"tagger": "tag", "books": "classify", "dinos": "lm"}  # what each model is for


@pytest.mark.parametrize("body, param", [
    ({"model": "tagger", "items": ["a b"]}, "items[0]"),  # a text to a tagger
    ({"model": "books", "items": [["a"]]}, "items[0]"),  # tokens to a classifier
    ({"model": "tagger", "items": [["a", 3]]}, "items[0][1]"),
    ({"model": "tagger", "items": [["a", "b c"]]}, "items[0][1]"),  # not one token
    ({"model": "tagger", "items": [["a"], []]}, "items[1]"),
    ({"model": "books", "items": ["   "]}, "items[0]"),
    ({"model": "tagger", "items": []}, "items"),
    ({"model": "tagger", "items": "a"}, "items"),
    ({"model": "tagger"}, "items"),
    ({"items": [["a"]]}, "model"),
    ({"model": "tagger", "items": [["a"]], "extra": 1}, "extra"),
    ({"model": "tagger", "items": [["a"]] * 257}, "items"),  # over MAX_ITEMS
    ({"model": "tagger", "items": [["a"], ["a"] * 51]}, "items[1]"),  # over --max-tokens
    ({"model": "tagger", "items": [["a" * 101]]}, "items[0][0]"),  # over --max-prompt
    ({"model": "books", "items": ["x", "y " * 51]}, "items[1]"),  # over --max-prompt
])
def test_bad_bodies_name_the_field(server, body, param):
    error(post(server, body), 400, param)


def test_malformed_json(server):
    r = httpx.post(server.url + "/v1/predict", content=b'{"model": "tagger"', timeout=TIMEOUT,
                   headers={"Content-Type": "application/json"})
    error(r, 400, "body")


def test_api_key_and_body_limit(trained):
    s = Server(str(trained / "tagger.npz"), "--api-key", "sesame", "--max-body", "300", key="sesame")
    try:
        body = {"model": "tagger", "items": [["a", "b"]]}
        r = httpx.post(s.url + "/v1/predict", json=body, timeout=TIMEOUT)
        assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key"
        r = httpx.post(s.url + "/v1/predict", json=body, timeout=TIMEOUT, headers={"Authorization": "Bearer nope"})
        assert r.status_code == 401
        assert post(s, body).status_code == 200
        error(post(s, {"model": "tagger", "items": [["a"] * 100]}), 413, "body")
    finally:
        s.stop()
