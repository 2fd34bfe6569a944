"""`fermixnet serve`: a local web page and JSON API over one model.

Installed by ``pip install 'fermixnet[serve]'``.

- :mod:`fermixnet.serve.model`: the served model, both heads' logits, its workers.
- :mod:`fermixnet.serve.analysis`: upload or camera frame bytes -> faces, fused and per-head
  predictions, occlusion.
- :mod:`fermixnet.serve.app`: the FastAPI application, its limits and the static page.
"""
