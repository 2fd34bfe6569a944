"""The page in a real browser: Debian's headless Chromium, driven by Playwright, against the
server on a free localhost port. `.ci/run` installs chromium, so in CI this test runs."""

from __future__ import annotations

import base64
import contextlib
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import uvicorn_thread
from fermixnet.serve.app import create_app
from fermixnet.serve.model import load_served_model

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# Flags of a hermetic headless run: no GPU, no network services of the browser itself.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]

if not Path(CHROMIUM).is_file() and not os.environ.get("FERMIXNET_BROWSER_TEST"):
    pytest.skip("needs Debian's chromium (apt-get install chromium; .ci/run does)",
                allow_module_level=True)


@pytest.fixture(scope="module")
def server_url(serve_checkpoints) -> Iterator[str]:
    """The app served by uvicorn in a thread, on a free port of 127.0.0.1."""
    app = create_app(load_served_model(serve_checkpoints["torch"], detector="haar"))
    with uvicorn_thread(app) as url:
        yield url


@contextlib.contextmanager
def chromium_page(profile: Path, extra_args: tuple[str, ...] = ()) -> Iterator:
    """A page of a fresh headless Chromium profile."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(profile), executable_path=CHROMIUM, args=[*CHROMIUM_ARGS, *extra_args],
            headless=True, viewport={"width": 1280, "height": 900})
        try:
            yield context.new_page()
        finally:
            context.close()


@pytest.fixture
def page(tmp_path: Path):
    with chromium_page(tmp_path / "profile") as p:
        yield p


def test_upload_predict_and_occlude_in_chromium(page, server_url, synth_face_png, tmp_path):
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.goto(server_url)
    page.wait_for_selector("#model-info b", timeout=20_000)
    assert page.inner_text("#model-info b") == "tiny-inference-test"

    page.set_input_files("#file-input", files=[
        {"name": "faces.png", "mimeType": "image/png", "buffer": synth_face_png}])
    page.wait_for_selector(".face-card .bars .fill", timeout=30_000)
    cards = page.locator(".face-card")
    assert cards.count() == 2
    widths = cards.first.locator(".bars .val").all_inner_texts()
    assert len(widths) == 7 and sum(float(w.rstrip("%")) for w in widths) == pytest.approx(
        100, abs=0.5)
    assert "High-level head" in cards.first.inner_text()
    assert "Mid-level head" in cards.first.inner_text()
    assert page.locator("#stage").is_visible()

    page.select_option("#occluder-select", "sunglasses")
    page.wait_for_selector(".pair .occluded .bars .fill", timeout=30_000)
    pairs = page.locator(".pair")
    assert pairs.count() == 2
    assert "sunglasses" in pairs.first.locator(".occluded h3").inner_text()
    assert page.eval_on_selector(".pair .occluded img", "img => img.naturalWidth") > 0
    assert pairs.first.locator(".verdict").inner_text().startswith("Prediction ")
    assert not page.locator("#error").is_visible()

    shot = tmp_path / "serve.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    if os.environ.get("FERMIXNET_SCREENSHOT"):
        shutil.copy(shot, os.environ["FERMIXNET_SCREENSHOT"])
    # every request of the page went to this server: no CDN, works offline
    assert requests and all(u.startswith((server_url, "data:", "blob:")) for u in requests)


def test_a_dropped_picture_without_a_face_shows_the_servers_error(page, server_url):
    """Drag and drop (a DataTransfer dropped on the zone) of a 1x1 GIF: the server's 422."""
    page.goto(server_url)
    page.wait_for_selector("#model-info b", timeout=20_000)
    blank = b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00" \
            b"\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
    transfer = page.evaluate_handle(
        """b64 => { const dt = new DataTransfer();
                    const bytes = Uint8Array.from(atob(b64), c => c.charCodeAt(0));
                    dt.items.add(new File([bytes], "blank.gif", {type: "image/gif"}));
                    return dt; }""", base64.b64encode(blank).decode())
    page.dispatch_event("#drop-zone", "drop", {"dataTransfer": transfer})
    page.wait_for_selector("#error:not([hidden])", timeout=30_000)
    assert "no face found" in page.inner_text("#error")
    assert page.locator(".face-card").count() == 0


def test_webcam_snapshot_is_sent_to_the_server(server_url, tmp_path):
    """Chromium's fake camera (a test pattern, no face): the snapshot reaches the server,
    whose 'no face' answer the page shows."""
    fake = ("--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream")
    with chromium_page(tmp_path / "profile", fake) as page:
        page.goto(server_url)
        page.wait_for_selector("#model-info b", timeout=20_000)
        page.click("#webcam-button")
        page.wait_for_selector("#snapshot-button:not([hidden])", timeout=20_000)
        page.wait_for_function("document.getElementById('webcam').videoWidth > 0")
        with page.expect_response(lambda r: "/api/predict" in r.url) as response:
            page.click("#snapshot-button")
        assert response.value.status == 422
        page.wait_for_selector("#error:not([hidden])", timeout=30_000)
        assert "no face found" in page.inner_text("#error")
        assert page.locator("#stage").is_visible() and not page.locator("#webcam").is_visible()


def test_live_webcam_streams_predictions_and_occlusion(server_url, synth_clip_y4m, tmp_path):
    """Chromium's fake camera plays a generated clip of two faces gliding right: the page
    streams frames to /api/frame, and boxes and predictions appear and follow the faces; the
    occlusion panel then occludes every following frame."""
    fake = ("--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
            f"--use-file-for-fake-video-capture={synth_clip_y4m}")
    answers: list = []
    with chromium_page(tmp_path / "profile", fake) as page:
        page.on("response", lambda r: answers.append(r) if "/api/frame" in r.url else None)
        page.goto(server_url)
        page.wait_for_selector("#model-info b", timeout=20_000)
        page.click("#webcam-button")
        page.wait_for_selector(".face-card .bars .fill", timeout=60_000)
        page.wait_for_function(
            "Number(document.getElementById('live-info').dataset.frames) >= 4", timeout=60_000)
        boxes = set()
        deadline = time.monotonic() + 30
        while len(boxes) < 3 and time.monotonic() < deadline:
            boxes.add(page.evaluate("JSON.stringify(state.result.results[0].faces[0].box)"))
            time.sleep(0.2)
        assert len(boxes) >= 3, boxes  # the box follows the gliding face
        assert page.locator(".face-card").count() >= 1
        assert "Mid-level head" in page.locator(".face-card").first.inner_text()
        assert "frames/s" in page.inner_text("#live-info") and page.locator("#stage").is_visible()

        page.select_option("#occluder-select", "sunglasses")
        page.click("#occlude-button")
        page.wait_for_selector(".pair .occluded img", timeout=60_000)
        seen = len(answers)
        page.wait_for_function(
            f"Number(document.getElementById('live-info').dataset.frames) >= "
            f"{page.evaluate('live.frames') + 2}", timeout=60_000)
        assert "sunglasses" in page.locator(".pair .occluded h3").first.inner_text()
        assert page.eval_on_selector(".pair .occluded img", "img => img.naturalWidth") > 0
        assert any("occluder=sunglasses" in r.url for r in answers[seen:])
        assert all(r.status == 200 for r in answers) and not page.locator("#error").is_visible()

        page.click("#webcam-button")  # stop: the last frame stays
        assert page.locator("#live-info").is_hidden() and page.locator("#stage").is_visible()
