"""The HTTP service in-process: API, keys, limits, hostile inputs, logs and metrics.

Each test builds the app around one warmed worker pool shared by the module (start-up
costs a few seconds once) and drives it with Starlette's TestClient (httpx).
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import re
import threading
import time

import pytest

from test_server_support import (ACME, ACME_KEY, ACME_PRODUCER, ACME_WATERMARK_KEY, GLOBEX,
                                 GLOBEX_KEY, PUBLIC, config_dict, encode, environ,
                                 make_config, marked_jpeg, photo, png_bomb, start_pool,
                                 stop_pool, toml_text)

from fastapi.testclient import TestClient  # noqa: E402  (skipped above without fastapi)

import provmark  # noqa: E402
from provmark.server import (ConfigError, create_app, hash_api_key, load_config,  # noqa: E402
                             parse_config)
from provmark.server._logging import JsonFormatter  # noqa: E402

@pytest.fixture(scope="module")
def pool():
    p = start_pool(workers=1, queue=4)
    yield p
    stop_pool(p)


@pytest.fixture
def cfg(tmp_path):
    return make_config(tmp_path)


@pytest.fixture
def client(cfg, pool):
    with TestClient(create_app(cfg, pool=pool), raise_server_exceptions=True) as c:
        yield c


@pytest.fixture(scope="module")
def jpeg():
    return encode(photo(), "JPEG", quality=92)


@pytest.fixture(scope="module")
def png():
    return encode(photo("astronaut", 512, 384), "PNG")


def _assert_error(resp, status: int, code: str, *words: str) -> dict:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert body["error"] == code, body
    assert body["request_id"] == resp.headers["X-Request-ID"]
    for w in words:
        assert w.lower() in body["message"].lower(), body["message"]
    return body


def _still_up(client, jpeg) -> None:
    """The service answers health checks and real work after the bad request."""
    assert client.get("/healthz").json()["status"] == "ok"
    assert client.get("/readyz").status_code == 200
    r = client.post("/v1/detect?search=aligned", content=jpeg,
                    headers={"Content-Type": "image/jpeg"})
    assert r.status_code == 200 and r.json()["found"] is False


# --------------------------------------------------------------------------- configuration


def test_config_reads_keys_from_files_and_environment(tmp_path):
    cfg = make_config(tmp_path, queue=7)
    assert cfg.queue == 7 and cfg.capacity == 8
    assert cfg.providers[ACME].key == ACME_WATERMARK_KEY  # one trailing newline removed
    assert cfg.providers[GLOBEX].key == b"globex watermark key"
    assert cfg.providers[PUBLIC].key == provmark.PUBLIC_KEY
    assert ACME_WATERMARK_KEY.decode() not in repr(cfg)  # keys stay out of reprs and logs
    names = {k.name: k for k in cfg.api_keys}
    assert names["acme-generator"].providers == {ACME, PUBLIC}


def test_config_file_round_trip(tmp_path, monkeypatch):
    path = tmp_path / "provmark.toml"
    path.write_text(toml_text(config_dict(tmp_path, port=9001)), encoding="utf-8")
    monkeypatch.setenv("PROVMARK_TEST_GLOBEX_KEY", "from the environment")
    cfg = load_config(path)
    assert cfg.port == 9001 and cfg.providers[GLOBEX].key == b"from the environment"


@pytest.mark.parametrize("change, words", [
    (lambda d: d["server"].update(wrokers=2), ("unknown field", "wrokers")),
    (lambda d: d["server"].update(queue=-1), ("queue", "out of range")),
    (lambda d: d["server"].update(detect="sometimes"), ("detect",)),
    (lambda d: d["provider"][1].update(key_env="PROVMARK_TEST_UNSET"), ("PROVMARK_TEST_UNSET",
                                                                      "not set")),
    (lambda d: d["provider"][0].update(key_file="/nonexistent/acme.key"), ("cannot read",)),
    (lambda d: d["provider"][2].update(code=2 ** 24), ("out of range",)),
    (lambda d: d["api_key"][0].update(hash="plain-text-key"), ("sha256:", "--hash-key")),
    (lambda d: d["api_key"][0].update(providers=[999]), ("999", "no [[provider]]")),
    (lambda d: d["api_key"][1].update(name="acme-generator"), ("used twice",)),
    (lambda d: d["provider"][0].update(content_producer="has space"), ("content_producer",)),
])
def test_config_errors_name_the_field(tmp_path, change, words):
    data = config_dict(tmp_path)
    change(data)
    with pytest.raises(ConfigError) as info:
        parse_config(data, source="bad.toml", environ=environ())
    msg = str(info.value)
    assert "bad.toml" in msg
    for w in words:
        assert w in msg


def test_config_not_toml(tmp_path):
    path = tmp_path / "provmark.toml"
    path.write_text("[server\nport = 1", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(path)


def test_hash_key_command(monkeypatch, capsys):
    from provmark.server.cli import add_serve_parser, cmd_serve
    import argparse

    parser = argparse.ArgumentParser()
    add_serve_parser(parser.add_subparsers())
    args = parser.parse_args(["serve", "--hash-key"])
    monkeypatch.setattr("sys.stdin", io.StringIO(ACME_KEY + "\n"))
    assert cmd_serve(args) == 0
    out = capsys.readouterr().out.strip()
    assert out == hash_api_key(ACME_KEY) and ACME_KEY not in out
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", out)
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    assert cmd_serve(args) == 2
    assert "at least 20" in capsys.readouterr().err


def test_check_command_prints_no_secret(tmp_path, monkeypatch, capsys):
    from provmark.server.cli import add_serve_parser, cmd_serve
    import argparse

    path = tmp_path / "provmark.toml"
    path.write_text(toml_text(config_dict(tmp_path)), encoding="utf-8")
    monkeypatch.setenv("PROVMARK_TEST_GLOBEX_KEY", "globex watermark key")
    parser = argparse.ArgumentParser()
    add_serve_parser(parser.add_subparsers())
    assert cmd_serve(parser.parse_args(["serve", "--config", str(path), "--check"])) == 0
    out = capsys.readouterr().out
    assert "provider 4242 (acme): key from file" in out and "fingerprint" in out
    assert ACME_WATERMARK_KEY.decode() not in out and "globex watermark key" not in out


# --------------------------------------------------------------------------- the API


def test_embed_is_byte_identical_to_the_library(client, jpeg, png):
    payload = provmark.Payload(ACME, 987654321, label=2)
    for data, ctype, params, lib in [
        (jpeg, "image/jpeg", "", {}),
        (png, "image/png", "&format=webp&quality=90", {"format": "webp", "quality": 90}),
        (jpeg, "image/jpeg", "&format=png", {"format": "png"}),
    ]:
        r = client.post(f"/v1/embed?provider={ACME}&content_id=987654321&label=2{params}",
                        content=data, headers={"X-API-Key": ACME_KEY, "Content-Type": ctype})
        assert r.status_code == 200, r.text
        expected = provmark.embed_bytes(data, payload, key=ACME_WATERMARK_KEY, **lib)
        assert r.content == expected
        fmt = lib.get("format", "jpeg" if ctype == "image/jpeg" else "png")
        assert r.headers["content-type"] == f"image/{fmt}"
    det = provmark.detect_bytes(r.content, key=ACME_WATERMARK_KEY)
    assert det.found and det.payload == payload


def test_label_is_byte_identical_to_the_library(client, jpeg):
    r = client.post(f"/v1/label?provider={ACME}&content_id=77&produce_id=img-77&quality=88",
                    content=jpeg, headers={"X-API-Key": ACME_KEY, "Content-Type": "image/jpeg"})
    assert r.status_code == 200, r.text
    expected = provmark.label_bytes(jpeg, provmark.Payload(ACME, 77), key=ACME_WATERMARK_KEY,
                                    content_producer=ACME_PRODUCER, produce_id="img-77",
                                    quality=88)
    assert r.content == expected
    rep = provmark.inspect(r.content, key=ACME_WATERMARK_KEY, search=True)
    assert rep.verdict == "consistent"


def test_label_content_producer_is_the_providers(client, jpeg):
    r = client.post(f"/v1/label?provider={ACME}&content_id=1&produce_id=x"
                    "&content_producer=SOMEONE-ELSE", content=jpeg,
                    headers={"X-API-Key": ACME_KEY})
    _assert_error(r, 403, "provider_not_allowed", ACME_PRODUCER)
    # A provider without a configured ContentProducer needs one in the request.
    r = client.post(f"/v1/label?provider={PUBLIC}&content_id=1&produce_id=x", content=jpeg,
                    headers={"X-API-Key": ACME_KEY})
    _assert_error(r, 422, "invalid_parameter", "content_producer is required")


def test_detect_and_inspect(client, jpeg):
    marked = marked_jpeg(PUBLIC, 4455)
    r = client.post("/v1/detect", content=marked, headers={"Content-Type": "image/jpeg"})
    assert r.status_code == 200
    body = r.json()
    assert body["found"] and body["payload"]["content_id"] == 4455
    assert body["false_alarm_probability"] <= 1e-9
    assert body == json.loads(json.dumps(provmark.detect_bytes(marked).to_dict()))

    r = client.post("/v1/inspect?search=fast&images=true", files={"file": ("x.jpg", marked)})
    assert r.status_code == 200
    rep = r.json()
    assert rep["verdict"] == "metadata stripped, watermark present"
    assert rep["layers"]["watermark"] == "found" and rep["verdict_class"] == "warn"
    assert rep["images"]["evidence_heatmap"].startswith("data:image/png;base64,")
    assert rep["tamper"]["available"] is True

    r = client.post("/v1/inspect/report?search=fast", content=marked)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "Provenance forensic report" in r.text and "<script" not in r.text.lower()
    assert "sandbox" in r.headers["content-security-policy"]
    assert r.headers["content-disposition"] == 'attachment; filename="image.report.html"'
    # The report names the upload and hashes the bytes it examined.
    assert hashlib.sha256(marked).hexdigest() in r.text and "uploaded image" in r.text

    # Read with a provider's own key: only with an API key bound to it.
    acme_marked = provmark.embed_bytes(jpeg, provmark.Payload(ACME, 5), key=ACME_WATERMARK_KEY)
    r = client.post(f"/v1/detect?provider={ACME}", content=acme_marked,
                    headers={"X-API-Key": ACME_KEY})
    assert r.json()["found"] and r.json()["payload"]["provider"] == ACME
    r = client.post("/v1/detect", content=acme_marked)  # the public key reads nothing
    assert r.status_code == 200 and r.json()["found"] is False


def test_detection_needs_a_key_when_configured(tmp_path, pool, jpeg):
    cfg = make_config(tmp_path, detect="api-key")
    with TestClient(create_app(cfg, pool=pool)) as c:
        _assert_error(c.post("/v1/detect", content=jpeg), 401, "missing_api_key", "X-API-Key")
        r = c.post("/v1/detect?search=aligned", content=jpeg, headers={"X-API-Key": GLOBEX_KEY})
        assert r.status_code == 200


def test_health_readiness_metrics_docs_page(client, jpeg):
    assert client.get("/healthz").json() == {"status": "ok", "version": provmark.__version__}
    ready = client.get("/readyz").json()
    assert ready["status"] == "ready" and ready["workers"] == 1
    assert ready["warm_up_seconds"][0] > 0  # the worker ran every job before serving
    client.post(f"/v1/embed?provider={ACME}&content_id=1", content=jpeg,
                headers={"X-API-Key": ACME_KEY})
    client.post("/v1/detect", content=marked_jpeg(PUBLIC, 1))
    text = client.get("/metrics").text
    assert re.search(r'provmark_requests_total\{endpoint="/v1/embed",method="POST",'
                     r'status="200"\} 1\n', text)
    assert 'provmark_images_marked_total{endpoint="/v1/embed"} 1' in text
    assert 'provmark_marks_found_total{endpoint="/v1/detect"} 1' in text
    assert 'provmark_request_duration_seconds_bucket{endpoint="/v1/detect",le="+Inf"} 1' in text
    assert "provmark_workers 1" in text
    schema = client.get("/openapi.json").json()
    assert {"/v1/embed", "/v1/label", "/v1/detect", "/v1/inspect", "/v1/inspect/report",
            "/healthz", "/readyz", "/metrics"} <= set(schema["paths"])
    page = client.get("/")
    assert page.status_code == 200 and "Drop an image here" in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]
    # Nothing on the page or the docs comes from another origin.
    for path in ("/", "/docs", "/static/app.js", "/static/docs.js", "/static/app.css"):
        body = client.get(path).text
        assert not re.search(r"(src|href)=\"(https?:)?//", body), path
        assert "cdn" not in body.lower(), path


def test_request_id_is_kept_or_made(client):
    r = client.get("/healthz", headers={"X-Request-ID": "trace-42.a"})
    assert r.headers["X-Request-ID"] == "trace-42.a"
    r = client.get("/healthz", headers={"X-Request-ID": "bad id\twith tabs"})
    assert re.fullmatch(r"[0-9a-f]{16}", r.headers["X-Request-ID"])


def test_logs_are_json_with_request_id_and_never_the_key(client, jpeg):
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("provmark.server")
    old_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        r = client.post(f"/v1/embed?provider={ACME}&content_id=1", content=jpeg,
                        headers={"X-API-Key": ACME_KEY, "X-Request-ID": "req-1"})
        client.post("/v1/embed?provider=1&content_id=1", content=jpeg,
                    headers={"X-API-Key": "wrong-key-but-long-enough-0000"})
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)
    assert r.status_code == 200
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    ok = next(e for e in lines if e.get("request_id") == "req-1")
    assert ok["event"] == "request" and ok["status"] == 200 and ok["path"] == "/v1/embed"
    assert ok["api_key"] == "acme-generator" and ok["provider"] == ACME
    assert ok["worker_ms"] > 0 and ok["bytes_in"] == len(jpeg)
    bad = [e for e in lines if e.get("status") == 401]
    assert bad and bad[0]["error"] == "invalid_api_key"
    text = stream.getvalue()
    assert ACME_KEY not in text and "wrong-key-but-long-enough" not in text
    assert "content_id" not in text  # query strings are not logged


# --------------------------------------------------------------------------- security


def test_no_key(client, jpeg):
    r = client.post(f"/v1/embed?provider={ACME}&content_id=1", content=jpeg)
    _assert_error(r, 401, "missing_api_key", "X-API-Key")
    _still_up(client, jpeg)


@pytest.mark.parametrize("key", ["wrong-key-0123456789abcdef", "", "x",
                                 ACME_KEY + " ", ACME_KEY[:-1]])
def test_wrong_key(client, jpeg, key):
    r = client.post(f"/v1/embed?provider={ACME}&content_id=1", content=jpeg,
                    headers={"X-API-Key": key})
    if key == "":  # an empty header is no key
        _assert_error(r, 401, "missing_api_key")
    else:
        _assert_error(r, 401, "invalid_api_key", "matches no key")
    _still_up(client, jpeg)


def test_non_ascii_key_header(client, jpeg):
    r = client.post(f"/v1/embed?provider={ACME}&content_id=1", content=jpeg,
                    headers=[(b"X-API-Key", "clé-ünïcode-0123456789".encode("latin-1"))])
    _assert_error(r, 401, "invalid_api_key")


def test_key_of_another_provider(client, jpeg):
    r = client.post(f"/v1/embed?provider={ACME}&content_id=1", content=jpeg,
                    headers={"X-API-Key": GLOBEX_KEY})
    _assert_error(r, 403, "provider_not_allowed", "globex-generator", str(ACME),
                  f"it may for: {GLOBEX}")
    r = client.post(f"/v1/label?provider={ACME}&content_id=1&produce_id=x", content=jpeg,
                    headers={"X-API-Key": GLOBEX_KEY})
    _assert_error(r, 403, "provider_not_allowed")
    # nor may it read with ACME's secret key (an oracle for it)
    r = client.post(f"/v1/detect?provider={ACME}", content=jpeg,
                    headers={"X-API-Key": GLOBEX_KEY})
    _assert_error(r, 403, "provider_not_allowed", "public key")
    # an unknown provider is refused the same way
    r = client.post("/v1/embed?provider=12345&content_id=1", content=jpeg,
                    headers={"X-API-Key": ACME_KEY})
    _assert_error(r, 403, "provider_not_allowed")
    _still_up(client, jpeg)


def test_oversized_body(tmp_path, pool, jpeg):
    cfg = make_config(tmp_path, max_body_bytes=256 * 1024)
    assert len(jpeg) < 256 * 1024
    big = b"\xff\xd8\xff" + bytes(600 * 1024)
    with TestClient(create_app(cfg, pool=pool)) as c:
        # Content-Length above the limit: refused before the body is read.
        r = c.post(f"/v1/embed?provider={ACME}&content_id=1", content=big,
                   headers={"X-API-Key": ACME_KEY})
        _assert_error(r, 413, "body_too_large", "262,144 bytes")
        # No Content-Length (chunked): refused while it streams in.
        r = c.post("/v1/detect", content=iter([big[i:i + 8192] for i in range(0, len(big), 8192)]))
        _assert_error(r, 413, "body_too_large")
        r = c.post("/v1/detect", files={"file": ("big.jpg", big)})
        _assert_error(r, 413, "body_too_large")
        assert c.get("/readyz").json()["admitted"] == 0  # the slots were given back
        _still_up(c, jpeg)


def test_png_bomb(client, jpeg):
    bomb = png_bomb(10000, 10000)
    assert len(bomb) < 200
    for path in (f"/v1/embed?provider={ACME}&content_id=1", "/v1/detect", "/v1/inspect"):
        r = client.post(path, content=bomb, headers={"X-API-Key": ACME_KEY,
                                                     "Content-Type": "image/png"})
        body = _assert_error(r, 413, "too_many_pixels", "10000x10000", "refused before decoding",
                             "max_pixels")
        assert "--max-pixels" not in body["message"]  # a command-line hint means nothing here
    _still_up(client, jpeg)


def test_truncated_file(client, jpeg):
    r = client.post("/v1/detect", content=jpeg[: len(jpeg) // 2],
                    headers={"Content-Type": "image/jpeg"})
    _assert_error(r, 422, "invalid_image", "truncated")
    r = client.post(f"/v1/embed?provider={ACME}&content_id=1", content=jpeg[:300],
                    headers={"X-API-Key": ACME_KEY})
    assert r.status_code in (415, 422) and r.json()["message"]
    _still_up(client, jpeg)


@pytest.mark.parametrize("data, status, code, words", [
    (b"%PDF-1.7\n" + bytes(500), 415, "unsupported_image", ("PDF", "not supported")),
    (b"GIF89a" + bytes(500), 415, "unsupported_image", ("GIF",)),
    (b"plain text, not an image at all" * 10, 415, "unsupported_image", ("not a recognised",)),
    (b"", 400, "no_image", ("empty",)),
])
def test_non_image(client, jpeg, data, status, code, words):
    r = client.post(f"/v1/embed?provider={ACME}&content_id=1", content=data,
                    headers={"X-API-Key": ACME_KEY, "Content-Type": "application/octet-stream"})
    _assert_error(r, status, code, *words)
    r = client.post("/v1/detect", content=b"{}", headers={"Content-Type": "application/json"})
    _assert_error(r, 415, "unsupported_media_type", "multipart field 'file'")
    r = client.post("/v1/detect", files={"other": ("a.jpg", jpeg)})
    _assert_error(r, 400, "no_image", "file")
    _still_up(client, jpeg)


def test_unusable_images(client, jpeg):
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGBA", (300, 300), (10, 20, 30, 0)).save(buf, "PNG")
    r = client.post(f"/v1/embed?provider={ACME}&content_id=1", content=buf.getvalue(),
                    headers={"X-API-Key": ACME_KEY})
    _assert_error(r, 422, "invalid_image", "transparent")
    small = encode(photo("coffee", 200, 150))
    r = client.post(f"/v1/embed?provider={ACME}&content_id=1", content=small,
                    headers={"X-API-Key": ACME_KEY})
    _assert_error(r, 422, "invalid_image", "256x256")
    flat = encode(photo("coffee", 300, 300) * 0 + 255, "PNG")
    r = client.post(f"/v1/embed?provider={ACME}&content_id=1", content=flat,
                    headers={"X-API-Key": ACME_KEY})
    _assert_error(r, 422, "cannot_embed")
    _still_up(client, jpeg)


@pytest.mark.parametrize("name, expected", [
    ("../../../etc/passwd", "passwd"),
    ("..\\..\\windows\\system32\\config.jpg", "config"),
    ("/etc/shadow.jpg", "shadow"),
    # httpx sends CR, LF and '"' in a multipart file name as %0D, %0A and %22
    ("a\r\nSet-Cookie: x=1.jpg", "a_0D_0ASet-Cookie_x_1"),
    ('quote".jpg', "quote_22"),
    ("; filename=evil.sh", "filename_evil"),
    ("....jpg", "image"),
    ("日本語.jpg", "image"),
])
def test_path_like_file_names(client, jpeg, tmp_path, monkeypatch, name, expected):
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    r = client.post(f"/v1/embed?provider={ACME}&content_id=1",
                    files={"file": (name, jpeg, "image/jpeg")}, headers={"X-API-Key": ACME_KEY})
    assert r.status_code == 200, r.text
    assert r.headers["content-disposition"] == f'attachment; filename="{expected}.marked.jpg"'
    assert "set-cookie" not in r.headers
    assert list(work.iterdir()) == []  # nothing written where a relative name could point
    assert r.content == provmark.embed_bytes(jpeg, provmark.Payload(ACME, 1),
                                             key=ACME_WATERMARK_KEY)
    r = client.post("/v1/inspect/report?search=aligned", files={"file": (name, jpeg)})
    assert r.status_code == 200
    assert r.headers["content-disposition"] == f'attachment; filename="{expected}.report.html"'
    assert "passwd" not in r.text and "shadow" not in r.text  # the report never names it


def test_bad_parameters(client, jpeg):
    for query, words in [
        ("provider=-1&content_id=1", ("provider", "greater than or equal")),
        (f"provider={2 ** 24}&content_id=1", ("provider", "less than")),
        (f"provider={ACME}&content_id={2 ** 40}", ("content_id",)),
        (f"provider={ACME}&content_id=1&label=4", ("label",)),
        (f"provider={ACME}&content_id=1&format=gif", ("format",)),
        (f"provider={ACME}&content_id=1&quality=0", ("quality",)),
        (f"provider={ACME}", ("content_id", "required")),
    ]:
        r = client.post(f"/v1/embed?{query}", content=jpeg, headers={"X-API-Key": ACME_KEY})
        _assert_error(r, 422, "invalid_parameter", *words)
    r = client.post("/v1/detect?search=everything", content=jpeg)
    _assert_error(r, 422, "invalid_parameter", "search")
    r = client.get("/v1/nothing")
    _assert_error(r, 404, "not_found", "/openapi.json")
    r = client.get("/v1/embed")
    _assert_error(r, 405, "method_not_allowed")


# --------------------------------------------------------------------------- limits


@pytest.mark.slow
def test_timeout_and_queue_full(tmp_path):
    """A job past the deadline is answered 504 and keeps its slot until it ends; with
    every slot taken the next request is answered 503 with Retry-After at once."""
    unmarked = encode(photo("astronaut", 512, 384), "JPEG", quality=90)
    pool = start_pool(workers=1, queue=0)
    try:
        cfg = make_config(tmp_path, workers=1, queue=0, timeout_seconds=0.2)
        with TestClient(create_app(cfg, pool=pool)) as c:
            t0 = time.monotonic()
            r = c.post("/v1/inspect?search=exhaustive", content=unmarked)
            _assert_error(r, 504, "timeout", "0.2 s")
            assert time.monotonic() - t0 < 1.5  # answered at the deadline, not at the end
            # The exhaustive search still runs: its slot is taken, the next is refused.
            assert c.get("/readyz").json()["admitted"] == 1
            r = c.post("/v1/detect", content=unmarked)
            body = _assert_error(r, 503, "busy", "retry after")
            assert int(r.headers["Retry-After"]) >= 1
            assert str(r.headers["Retry-After"]) in body["message"]
            deadline = time.monotonic() + 60
            while c.get("/readyz").json()["admitted"] and time.monotonic() < deadline:
                time.sleep(0.1)
            assert c.get("/readyz").json()["admitted"] == 0
        cfg = make_config(tmp_path, workers=1, queue=0, timeout_seconds=60)
        with TestClient(create_app(cfg, pool=pool)) as c:
            # One request at a time is served; concurrent ones get 503 until it ends.
            results = []

            def call():
                results.append(c.post("/v1/inspect?search=exhaustive", content=unmarked))

            t = threading.Thread(target=call)
            t.start()
            while c.get("/readyz").json()["admitted"] == 0 and t.is_alive():
                time.sleep(0.01)
            busy = c.post("/v1/detect", content=unmarked)
            t.join()
            assert busy.status_code == 503 and "Retry-After" in busy.headers
            assert results[0].status_code == 200 and results[0].json()["verdict"] == "no label"
            _still_up(c, unmarked)
    finally:
        stop_pool(pool)


@pytest.mark.slow
def test_not_ready_while_warming_up(tmp_path, jpeg):
    """The port answers at once: liveness 200, readiness 503 and work 503 with
    Retry-After until the workers are warm; then the work is served."""
    app = create_app(make_config(tmp_path, workers=1, queue=1))
    with TestClient(app) as c:
        assert c.get("/healthz").status_code == 200
        ready = c.get("/readyz")
        assert ready.status_code == 503 and ready.json()["status"] == "starting"
        r = c.post("/v1/detect", content=jpeg)
        _assert_error(r, 503, "not_ready", "warming up")
        assert r.headers["Retry-After"] == "2"
        deadline = time.monotonic() + 120
        while c.get("/readyz").status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert c.get("/readyz").json()["status"] == "ready"
        _still_up(c, jpeg)


@pytest.mark.slow
def test_a_dead_worker_is_replaced(tmp_path, jpeg):
    """A worker killed mid-job (out of memory, a signal): that request gets 503, the
    pool is replaced by a warmed one, and the service carries on."""
    import os
    import signal

    pool = start_pool(workers=1, queue=2)
    try:
        with TestClient(create_app(make_config(tmp_path), pool=pool)) as c:
            unmarked = encode(photo("astronaut", 640, 480), "JPEG", quality=90)
            results = []
            t = threading.Thread(target=lambda: results.append(
                c.post("/v1/inspect?search=exhaustive", content=unmarked)))
            t.start()
            while pool.running == 0:
                time.sleep(0.01)
            os.kill(pool.pids[0], signal.SIGKILL)
            t.join(30)
            _assert_error(results[0], 503, "workers_restarting", "retry")
            deadline = time.monotonic() + 120
            while c.get("/readyz").status_code != 200 and time.monotonic() < deadline:
                time.sleep(0.2)
            assert c.get("/readyz").json()["status"] == "ready"
            _still_up(c, jpeg)
    finally:
        stop_pool(pool)
