"""`fermixnet serve`'s JSON API in-process (FastAPI's test client): every endpoint, every bad
input, both backends, and concurrent requests giving the sequential answers."""

from __future__ import annotations

import contextlib
import io
import json
import os
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from fermixnet.serve.app import create_app
from fermixnet.serve.model import load_served_model
from fermixnet.synth.occlude import OCCLUDERS, OCCLUSION_TYPES


@pytest.fixture(scope="module")
def served(serve_checkpoints):
    return load_served_model(serve_checkpoints["torch"], detector="haar")


@pytest.fixture(scope="module")
def client(served):
    with TestClient(create_app(served, max_upload_mb=0.5, max_pixels=2_000_000)) as c:
        yield c


def _post(client: TestClient, data: bytes, query: str = "", name: str = "face.png"):
    return client.post(f"/api/predict{query}", files={"file": (name, data, "image/png")})


def _png(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


def test_health_and_model(client, served):
    assert client.get("/api/health").json() == {"status": "ok"}
    info = client.get("/api/model").json()
    assert info["arch"] == "tiny-inference-test" and info["backend"] == "torch"
    assert info["classes"] == list(served.predictor.classes) and len(info["classes"]) == 7
    assert info["input_size"] == [48, 48] and info["mid_branch"] is True
    assert info["metrics"] == {"val_acc": 0.5}
    assert set(OCCLUSION_TYPES) <= set(info["occluders"])
    assert {"mask", "sunglasses", "hand", "hat", "scarf"} <= set(info["occluders"])


def test_page_and_assets_are_local(client):
    page = client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    for asset in ("/static/style.css", "/static/app.js"):
        assert asset in page.text and client.get(asset).status_code == 200
    # every asset is served from here: no other host is named by the page or its script
    for text in (page.text, client.get("/static/app.js").text):
        assert "http://" not in text and "https://" not in text and "//cdn" not in text


def test_predict_matches_fermixnet_predict(client, served, synth_face_png, tmp_path):
    """The clean answer is `predict --format json`'s schema and numbers, plus per-face heads."""
    res = client.post("/api/predict", files={"file": ("f.png", synth_face_png, "image/png")})
    assert res.status_code == 200, res.text
    body = res.json()
    (tmp_path / "f.png").write_bytes(synth_face_png)
    ref = served.predictor.predict(str(tmp_path / "f.png")).to_dict()
    got = body["results"][0]
    assert got["width"] == ref["width"] == 320 and got["height"] == 200
    assert len(got["faces"]) == len(ref["faces"]) == 2
    for face, want in zip(got["faces"], ref["faces"], strict=True):
        heads = face.pop("heads")
        assert face == want
        assert set(heads) == {"high", "mid"}
        assert heads["high"]["probs"] != heads["mid"]["probs"]
        assert sum(heads["mid"]["probs"].values()) == pytest.approx(1.0, abs=1e-4)
    assert "occlusion" not in body


def test_heads_are_the_two_branches_of_the_fused_logits(served, synth_face_png):
    """Decision fusion (Sec. 3.4): softmax(high + mid) must be the fused probabilities."""
    from fermixnet.serve.analysis import analyse, decode_image

    body = analyse(served, decode_image(synth_face_png))
    face = body["results"][0]["faces"][0]
    classes = served.predictor.classes
    high = np.log([face["heads"]["high"]["probs"][c] for c in classes])
    mid = np.log([face["heads"]["mid"]["probs"][c] for c in classes])
    fused = np.exp(high + mid - (high + mid).max())
    fused /= fused.sum()
    assert np.allclose(fused, [face["probs"][c] for c in classes], atol=1e-4)


@pytest.mark.parametrize("occluder", [*OCCLUSION_TYPES, "mask", "sunglasses", "hand"])
def test_occluders_change_the_face_and_keep_the_schema(client, synth_face_png, occluder):
    body = _post(client, synth_face_png, f"?occluder={occluder}").json()
    occ = body["occlusion"]
    kind = occluder if occluder in OCCLUSION_TYPES else next(
        k for k, names in OCCLUDERS.items() if occluder in names)
    assert occ["type"] == kind and len(occ["faces"]) == len(body["results"][0]["faces"])
    face = occ["faces"][0]
    assert face["occluder"] in OCCLUDERS[kind]
    if occluder not in OCCLUSION_TYPES:
        assert face["occluder"] == occluder
    assert face["image"].startswith("data:image/png;base64,")
    assert sum(face["probs"].values()) == pytest.approx(1.0, abs=1e-4)
    assert face["probs"] != body["results"][0]["faces"][0]["probs"]  # the pixels changed


def test_occlusion_is_reproducible_by_seed(client, synth_face_png):
    a = _post(client, synth_face_png, "?occluder=object&seed=3").json()["occlusion"]
    b = _post(client, synth_face_png, "?occluder=object&seed=3").json()["occlusion"]
    c = _post(client, synth_face_png, "?occluder=object&seed=4").json()["occlusion"]
    assert a == b and a["faces"][0]["image"] != c["faces"][0]["image"]


def _bomb() -> bytes:
    """A 3000x3000 PNG (9 MP, over the 2 MP cap of the fixture) of a few kB."""
    return _png(np.zeros((3000, 3000, 3), np.uint8))


BAD_INPUTS = {
    "not an image": (b"this is text, not pixels", "", 422, "not a readable image (not a format"),
    "empty": (b"", "", 422, "empty"),
    "no face": (None, "", 422, "no face"),
    "unknown occluder": (None, "?occluder=umbrella", 400, "unknown occluder 'umbrella'"),
    "decompression bomb": ("bomb", "", 413, "over the limit of 2000000 pixels"),
    "over the size limit": (os.urandom(700 * 1024), "", 413, "over the limit of 0.5 MB"),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_gets_a_clear_4xx_and_the_server_keeps_serving(client, synth_face_png, case):
    data, query, status, message = BAD_INPUTS[case]
    if data is None:
        data = _png(np.full((64, 64, 3), 128, np.uint8)) if case == "no face" else synth_face_png
    elif data == "bomb":
        data = _bomb()
    res = _post(client, data, query)
    assert res.status_code == status, res.text
    assert message in res.json()["detail"]
    assert _post(client, synth_face_png).status_code == 200


def test_truncated_file(client, synth_face_png):
    res = _post(client, synth_face_png[: len(synth_face_png) // 2])
    assert res.status_code == 422 and "not a readable image" in res.json()["detail"]
    jpeg = io.BytesIO()
    Image.open(io.BytesIO(synth_face_png)).save(jpeg, format="JPEG")
    res = _post(client, jpeg.getvalue()[:-600], name="f.jpg")
    assert res.status_code == 422 and "truncated" in res.json()["detail"]


def test_chunked_upload_over_the_limit(client):
    """Without Content-Length the limit is enforced while the body streams in."""
    def chunks():
        for _ in range(12):
            yield b"x" * 65536

    res = client.post("/api/predict", content=chunks(),
                      headers={"content-type": "multipart/form-data; boundary=b"})
    assert res.status_code == 413 and "over the limit" in res.json()["detail"]


def test_missing_file_field(client):
    assert client.post("/api/predict", data={"x": "1"}).status_code == 422


def test_requests_leave_no_files(served, synth_face_png, tmp_path, monkeypatch):
    """An upload over the 1 MB in-memory spool goes to a temporary file, which is removed."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    noise = np.random.default_rng(0).integers(0, 255, (720, 720, 3), dtype=np.uint8)
    big = _png(noise)
    assert len(big) > 1024 * 1024
    with TestClient(create_app(served, max_upload_mb=5)) as c:
        for data in (synth_face_png, big, b"junk"):
            assert _post(c, data, "?occluder=mask").status_code in (200, 422)
    assert list(tmp_path.iterdir()) == []


def test_concurrent_requests_give_the_sequential_answers(client, synth_face_png):
    queries = ["", "?occluder=mask", "?occluder=upper&seed=2", "?occluder=hand", ""] * 3
    sequential = [_post(client, synth_face_png, q).json() for q in queries]
    with ThreadPoolExecutor(max_workers=6) as pool:
        concurrent = list(pool.map(lambda q: _post(client, synth_face_png, q).json(), queries))
    assert concurrent == sequential


def test_onnx_backend_answers_like_torch(serve_checkpoints, synth_face_png, served):
    onnx = load_served_model(serve_checkpoints["onnx"], detector="haar")
    with TestClient(create_app(onnx)) as c:
        assert c.get("/api/model").json()["backend"] == "onnxruntime"
        got = _post(c, synth_face_png, "?occluder=mask").json()
    with TestClient(create_app(served)) as c:
        want = _post(c, synth_face_png, "?occluder=mask").json()
    for g, w in zip(got["results"][0]["faces"], want["results"][0]["faces"], strict=True):
        assert g["label"] == w["label"]
        assert np.allclose(list(g["probs"].values()), list(w["probs"].values()), atol=1e-4)
        assert np.allclose(list(g["heads"]["mid"]["probs"].values()),
                           list(w["heads"]["mid"]["probs"].values()), atol=1e-4)
    assert json.dumps(got["occlusion"]["faces"][0]["image"]) == json.dumps(
        want["occlusion"]["faces"][0]["image"])


def test_load_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"missing\.onnx"):
        load_served_model(tmp_path / "missing.onnx")
    with pytest.raises(FileNotFoundError, match="checkpoint file not found"):
        load_served_model(tmp_path)
    with pytest.raises(ValueError, match="not TorchScript"):
        load_served_model(tmp_path / "m.pt")


def test_cli_serves_the_checkpoint_on_localhost(serve_checkpoints, synth_face_png, monkeypatch,
                                                capsys):
    import cv2
    import uvicorn

    from fermixnet.cli import main

    seen, cv_threads = {}, []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: seen.update(app=app, **kw))
    monkeypatch.setattr(cv2, "setNumThreads", cv_threads.append)
    assert main(["serve", "--checkpoint", str(serve_checkpoints["onnx"]), "--port", "8123",
                 "--max-upload-mb", "1", "--detector", "haar", "--workers", "2"]) == 0
    assert (seen["host"], seen["port"]) == ("127.0.0.1", 8123)
    assert cv_threads == [1]  # two workers: OpenCV's own threads would only compete with them
    assert "http://127.0.0.1:8123/" in capsys.readouterr().err
    with TestClient(seen["app"]) as c:
        assert c.get("/api/model").json()["backend"] == "onnxruntime"
        assert _post(c, synth_face_png).status_code == 200
        assert _post(c, os.urandom(1100 * 1024)).status_code == 413
    assert main(["serve", "--checkpoint", str(serve_checkpoints["onnx"]), "--workers", "1",
                 "--detector", "haar"]) == 0
    assert cv_threads == [1]  # one worker: OpenCV keeps its threads
    assert main(["serve", "--checkpoint", "/nonexistent/ckpt"]) == 2
    assert "checkpoint file not found" in capsys.readouterr().err


def test_openapi_schema_is_served_and_no_cdn_docs(client):
    schema = client.get("/api/openapi.json").json()
    assert {"/api/predict", "/api/model", "/api/health"} <= set(schema["paths"])
    assert client.get("/docs").status_code == 404 and client.get("/api/docs").status_code == 404


def test_inference_runs_off_the_event_loop(client, served, synth_face_png):
    """While a prediction waits for a worker, the server still answers other requests (were
    inference on the event loop, /api/health would wait until the safety timer frees it)."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        with contextlib.ExitStack() as busy:  # released first, also when an assert fails
            for _ in range(served.workers):  # every worker is busy
                busy.enter_context(served.worker())
            pending = pool.submit(_post, client, synth_face_png)
            start = time.monotonic()
            assert client.get("/api/health").status_code == 200
            assert time.monotonic() - start < 10
            time.sleep(0.5)
            assert not pending.done()
        assert pending.result(timeout=60).status_code == 200
