"""`/api/frame`, the live camera's lean path: the answers of `/api/predict` without multipart,
thumbnails or a 422 for an empty frame; bad frames and dropped connections get a clear 4xx (or
nothing) and the server keeps serving; several workers give the sequential answers."""

from __future__ import annotations

import io
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlparse

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from conftest import synth_clip, uvicorn_thread
from fermixnet.serve import analysis
from fermixnet.serve.app import create_app
from fermixnet.serve.model import load_served_model


@pytest.fixture(scope="module")
def onnx_served(serve_checkpoints):
    return load_served_model(serve_checkpoints["onnx"], detector="haar", workers=2)


@pytest.fixture(scope="module")
def client(onnx_served):
    with TestClient(create_app(onnx_served, max_upload_mb=0.5, max_pixels=2_000_000)) as c:
        yield c


def _jpeg(frame: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(frame).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def _frame(client, data: bytes, query: str = ""):
    return client.post(f"/api/frame{query}", content=data,
                       headers={"content-type": "image/jpeg"})


def test_frame_answers_like_predict(client):
    data = _jpeg(synth_clip(1)[0])
    got = _frame(client, data)
    assert got.status_code == 200, got.text
    want = client.post("/api/predict", files={"file": ("f.jpg", data, "image/jpeg")}).json()
    assert got.json() == want and len(want["results"][0]["faces"]) == 2
    assert "occlusion" not in got.json()
    info = client.get("/api/model").json()
    assert info["backend"] == "onnxruntime" and info["workers"] == 2


def test_a_frame_without_a_face_is_an_answer(client):
    blank = _jpeg(np.full((120, 160, 3), 128, np.uint8))
    body = _frame(client, blank, "?occluder=mask").json()
    assert body["results"][0]["faces"] == [] and body["results"][0]["width"] == 160
    assert body["occlusion"] == {"type": "lower", "seed": 0, "faces": []}
    assert client.post("/api/predict", files={"file": ("b.jpg", blank)}).status_code == 422


def test_occlusion_without_thumbnails_unless_asked(client, monkeypatch):
    data = _jpeg(synth_clip(1)[0])
    with_images = _frame(client, data, "?occluder=sunglasses&seed=2&images=true").json()
    predict = client.post("/api/predict?occluder=sunglasses&seed=2",
                          files={"file": ("f.jpg", data)}).json()

    def no_encoding(*args, **kwargs):
        raise AssertionError("the lean path must not encode thumbnails")

    monkeypatch.setattr(analysis, "_data_url", no_encoding)
    lean = _frame(client, data, "?occluder=sunglasses&seed=2").json()
    for a, b, c in zip(lean["occlusion"]["faces"], with_images["occlusion"]["faces"],
                       predict["occlusion"]["faces"], strict=True):
        assert "image" not in a and b["image"].startswith("data:image/jpeg;base64,")
        assert c["image"].startswith("data:image/png;base64,")
        assert a == {k: v for k, v in b.items() if k != "image"}
        assert a["probs"] == c["probs"] and a["occluder"] == "sunglasses"


BAD = {
    "empty": (b"", "", 422, "the upload is empty"),
    "not an image": (b"GIF8 but not quite", "", 422, "not a readable image"),
    "multipart by mistake": (b"--b\r\ncontent-disposition: form-data\r\n\r\nx", "", 422,
                             "not a readable image"),
    "unknown occluder": (None, "?occluder=umbrella", 400, "unknown occluder 'umbrella'"),
    "bad seed": (None, "?seed=-1", 422, "greater than or equal to 0"),
    "decompression bomb": ("bomb", "", 413, "over the limit of 2000000 pixels"),
    "over the size limit": (b"\xff" * (700 * 1024), "", 413, "over the limit of 0.5 MB"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_frames_get_a_clear_4xx_and_the_server_keeps_serving(client, case):
    data, query, status, message = BAD[case]
    good = _jpeg(synth_clip(1)[0])
    if data is None:
        data = good
    elif data == "bomb":
        buf = io.BytesIO()
        Image.fromarray(np.zeros((3000, 3000, 3), np.uint8)).save(buf, format="PNG")
        data = buf.getvalue()
    res = _frame(client, data, query)
    assert res.status_code == status, res.text
    assert message in str(res.json()["detail"])
    assert len(_frame(client, good).json()["results"][0]["faces"]) == 2


def test_workers_give_the_sequential_answers(client, onnx_served):
    assert onnx_served.workers == 2 and not onnx_served.serial_forward
    frames = [_jpeg(f) for f in synth_clip(6)]
    queries = ["", "?occluder=mask", "", "?occluder=hand&seed=1", "", ""]
    sequential = [_frame(client, f, q).json() for f, q in zip(frames, queries, strict=True)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        concurrent = list(pool.map(lambda fq: _frame(client, *fq).json(),
                                   zip(frames, queries, strict=True)))
    assert concurrent == sequential
    boxes = [s["results"][0]["faces"][0]["box"][0] for s in sequential]
    assert boxes == sorted(boxes) and boxes[0] < boxes[-1]  # the faces glide right


def test_dropped_connections_leave_the_server_serving(onnx_served):
    """A client that leaves mid-upload, and one that leaves before its answer, over a real
    socket: the next frame is answered."""
    good = _jpeg(synth_clip(1)[0])
    with uvicorn_thread(create_app(onnx_served)) as url:
        host, port = urlparse(url).hostname, urlparse(url).port
        head = (f"POST /api/frame HTTP/1.1\r\nHost: {host}\r\nContent-Type: image/jpeg\r\n"
                f"Content-Length: {len(good)}\r\n\r\n").encode()
        for sent in (head + good[: len(good) // 3], head + good):
            with socket.create_connection((host, port)) as s:
                s.sendall(sent)
            time.sleep(0.3)
        import httpx2 as httpx  # the test extra's HTTP client

        res = httpx.post(f"{url}/api/frame", content=good, timeout=60)
        assert res.status_code == 200 and len(res.json()["results"][0]["faces"]) == 2
        assert httpx.get(f"{url}/api/health", timeout=10).json() == {"status": "ok"}
