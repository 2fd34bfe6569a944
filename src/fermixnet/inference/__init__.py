"""Inference: face detection and alignment, prediction on photos, folders and videos, export."""

from fermixnet.inference.align import RAFDB_TEMPLATE, align_face, estimate_similarity
from fermixnet.inference.faces import (
    Face,
    FaceDetector,
    create_detector,
    list_detectors,
    register_detector,
)
from fermixnet.inference.predictor import Predictor
from fermixnet.inference.results import FaceResult, ImageResult

__all__ = [
    "RAFDB_TEMPLATE",
    "Face",
    "FaceDetector",
    "FaceResult",
    "ImageResult",
    "Predictor",
    "align_face",
    "create_detector",
    "estimate_similarity",
    "list_detectors",
    "register_detector",
]
