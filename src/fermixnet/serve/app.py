"""The FastAPI application: ``/`` (the page), ``/api/predict``, ``/api/frame``, ``/api/model``,
``/api/health``.

``/api/predict`` takes a multipart upload (the page's photos, ``curl -F``); ``/api/frame`` is the
live camera's lean path: the request body is the encoded frame itself (no multipart parsing),
a frame without faces is an answer (``faces: []``), and occluded faces' thumbnails are sent only
when ``images=true`` asks for them.

Every bad request gets a 4xx JSON ``{"detail": "..."}`` and the server keeps serving. Uploads
are read through Starlette's multipart parser, whose spooled temporary file (in memory up to
1 MB, then an unnamed temporary file) is closed, and so removed, when the request ends; images
are decoded from memory. Inference runs in a worker thread, never on the event loop.
"""

from __future__ import annotations

from importlib import resources
from typing import Annotated

from fastapi import FastAPI, File, Query, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fermixnet import __version__
from fermixnet.serve.analysis import (
    MAX_PIXELS,
    RequestError,
    analyse,
    check_occluder,
    decode_image,
    occluder_choices,
)
from fermixnet.serve.model import ServedModel
from fermixnet.synth.occlude import OCCLUSION_TYPES

STATIC = resources.files("fermixnet.serve") / "static"
MB = 1024 * 1024
# Multipart boundaries and part headers on top of the file itself.
_ENVELOPE = 64 * 1024


class BodyLimit:
    """ASGI middleware refusing request bodies over ``limit`` bytes with 413, before the body
    is parsed (by ``Content-Length``) or while it streams in (chunked uploads)."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.limit:
            await self._refuse(send)
            return
        seen, started, refused = 0, False, False

        async def counted() -> Message:
            # Over the limit: answer 413 now, and tell the app the client left, so that
            # whatever the body parser makes of that is never sent.
            nonlocal seen, refused
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit and not refused:
                refused = True
                if not started:
                    await self._refuse(send)
            return {"type": "http.disconnect"} if refused else message

        async def tracked(message: Message) -> None:
            nonlocal started
            if refused:
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, tracked)
        except Exception:
            if not refused:
                raise

    async def _refuse(self, send: Send) -> None:
        mb = (self.limit - _ENVELOPE) / MB
        response = JSONResponse({"detail": f"upload over the limit of {mb:g} MB"}, 413)
        await response({"type": "http"}, _no_body, send)


async def _no_body() -> Message:
    return {"type": "http.disconnect"}


# The OpenAPI description of /api/frame's body: the encoded frame itself.
_FRAME_BODY = {"requestBody": {"required": True, "content": {
    "image/jpeg": {"schema": {"type": "string", "format": "binary"}},
    "image/png": {"schema": {"type": "string", "format": "binary"}},
    "image/webp": {"schema": {"type": "string", "format": "binary"}}}}}


def model_info(served: ServedModel) -> dict[str, object]:
    """What ``GET /api/model`` answers: classes, input size, backbone, metrics, occluders."""
    meta, pred = served.meta, served.predictor
    return {
        "arch": meta.get("arch"),
        "classes": list(pred.classes),
        "input_size": list(pred.input_size),
        "mid_branch": served.has_mid,
        "backend": served.backend,
        "workers": served.workers,
        "detector": getattr(pred.detector, "name", type(pred.detector).__name__),
        "metrics": meta.get("metrics") or {},
        "occlusion_types": list(OCCLUSION_TYPES),
        "occluders": list(occluder_choices()),
        "version": __version__,
    }


def create_app(
    served: ServedModel, max_upload_mb: float = 10.0, max_pixels: int = MAX_PIXELS
) -> FastAPI:
    """The application serving ``served``.

    Args:
        served: the model shared by every request.
        max_upload_mb: uploads over this many megabytes get 413.
        max_pixels: images whose header says more pixels get 413 before decoding.
    """
    if max_upload_mb <= 0:
        raise ValueError(f"--max-upload-mb must be > 0, got {max_upload_mb}")
    # No Swagger/ReDoc pages: they load their scripts from a CDN. The schema stays local.
    app = FastAPI(title="fermixnet serve", version=__version__, docs_url=None, redoc_url=None,
                  openapi_url="/api/openapi.json")
    app.add_middleware(BodyLimit, limit=int(max_upload_mb * MB) + _ENVELOPE)
    info = model_info(served)

    @app.exception_handler(RequestError)
    async def _bad_request(_: Request, err: RequestError) -> JSONResponse:
        return JSONResponse({"detail": str(err)}, status_code=err.status)

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(str(STATIC / "index.html"))

    @app.get("/api/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/api/model")
    async def model() -> dict[str, object]:
        return info

    @app.post("/api/predict")
    async def predict(
        file: Annotated[UploadFile, File(description="an image file")],
        occluder: Annotated[str | None, Query(description="occlusion type or occluder")] = None,
        seed: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
    ) -> JSONResponse:
        check_occluder(occluder)  # before the upload is read
        data = await file.read()
        image = await run_in_threadpool(decode_image, data, max_pixels)
        return JSONResponse(await run_in_threadpool(analyse, served, image, occluder, seed))

    @app.post("/api/frame", openapi_extra=_FRAME_BODY)
    async def frame(
        request: Request,
        occluder: Annotated[str | None, Query(description="occlusion type or occluder")] = None,
        seed: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
        images: Annotated[bool, Query(description="occluded faces' JPEG thumbnails")] = False,
    ) -> JSONResponse:
        check_occluder(occluder)  # before the body is read
        data = await request.body()
        image = await run_in_threadpool(decode_image, data, max_pixels)
        answer = await run_in_threadpool(analyse, served, image, occluder, seed,
                                         "jpeg" if images else None, True)
        return JSONResponse(answer)

    app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")
    return app
