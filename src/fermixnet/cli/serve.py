"""`fermixnet serve`: the local web page and JSON API (``pip install 'fermixnet[serve]'``)."""

from __future__ import annotations

import argparse
import contextlib
import sys


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``serve`` subcommand to the dispatcher."""
    p = subparsers.add_parser(
        "serve",
        help="a local web page and JSON API: expressions of every face, with and without occluders",
        description="Serve a checkpoint folder or an exported .onnx file: the page at / and the "
        "JSON API at /api/predict, /api/model, /api/health (docs/serve.md).",
    )
    p.add_argument("--checkpoint", required=True, help="checkpoint folder, or an exported .onnx")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: localhost only)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    p.add_argument("--max-upload-mb", type=float, default=10.0,
                   help="uploads over this many MB get 413 (default 10)")
    p.add_argument("--detector", default="auto", help="face detector (see predict)")
    p.add_argument("--device", default="cpu", help="torch device, e.g. cpu, cuda")
    p.add_argument("--workers", type=int, default=0,
                   help="requests detected and classified at once, each with its own detector "
                   "(default 0: one per CPU core)")
    p.set_defaults(func=run_serve)


def run_serve(args: argparse.Namespace) -> int:
    """Load the model, then serve until interrupted; returns the exit status."""
    try:
        import uvicorn

        from fermixnet.serve.app import create_app
    except ImportError as err:
        raise ValueError(f"serve needs: pip install 'fermixnet[serve]' ({err})") from err
    from fermixnet.serve.model import load_served_model

    if not 0 <= args.port <= 65535:
        raise ValueError(f"--port must be in 0..65535, got {args.port}")
    served = load_served_model(args.checkpoint, args.detector, args.device, args.workers)
    if served.workers > 1:
        # The workers are the parallelism: OpenCV's own threads (YuNet's working copy, Haar)
        # would wait spinning on the cores the other workers use (~2 ms of CPU a request).
        with contextlib.suppress(ImportError):
            import cv2

            cv2.setNumThreads(1)
    app = create_app(served, max_upload_mb=args.max_upload_mb)
    if served.backend == "torch":
        print("fermixnet serve: serving with PyTorch; an ONNX export answers faster: "
              "fermixnet export --checkpoint CKPT --format onnx --out model.onnx "
              "(docs/serve.md)", file=sys.stderr)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"fermixnet serve: listening on {args.host}: the page and API are reachable from "
              "other machines and have no authentication", file=sys.stderr)
    print(f"fermixnet serve: http://{args.host}:{args.port}/", file=sys.stderr)
    uvicorn.run(app, host=args.host, port=args.port, log_level="info")
    return 0
