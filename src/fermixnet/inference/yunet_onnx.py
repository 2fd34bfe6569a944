"""YuNet run by ONNX Runtime: libfacedetection's network, its weights read from the yuface wheel.

The ``yuface`` wheel's ``libfacedetection.so`` computes each layer with hand-written per-pixel dot
products (~20 ms a 320x320 image on one AVX2 core). Its 53 layers' weights are data symbols of
the library, listed in ``param_pConvInfo``; this module reads them through :mod:`ctypes`, builds
the same network as an ONNX graph in memory (no model file is fetched or shipped) and runs it with
ONNX Runtime, whose MLAS kernels are several times faster. Decoding, scores and NMS follow
libfacedetection's ``objectdetect_cnn`` and ``detection_output`` (v3, the wheel's version), in
numpy, so that the faces equal the library's: the same count and order, boxes and landmarks
within a pixel (float rounding before truncation to integers), scores within 1 on its 0-100
scale (tests/test_yunet_onnx.py).

The network, as libfacedetection computes it:

- The BGR image (0-255, not normalised) is padded with zeros on the right and bottom to multiples
  of 32 pixels; a 3x3 stride-2 convolution (pad 1) with ReLU gives 16 channels.
- Depthwise-separable blocks: a 1x1 convolution without activation, then a 3x3 depthwise one
  (pad 1) with ReLU; a "unit" is two such blocks. 2x2 max pooling (stride 2) between stages;
  the stride-8, -16 and -32 stages feed a feature pyramid (nearest 2x upsampling, addition).
- Per level, four heads (each a block without ReLU): class and objectness logits, box offsets
  (dx, dy, log w, log h) and five landmarks, all in units of the level's stride from the cell's
  corner ``(col * stride, row * stride)``.
- Score ``sqrt(sigmoid(cls) * sigmoid(obj))`` >= 0.2; candidates sorted by score (stable), top
  1000, greedy NMS (a box is dropped at IoU > 0.45 with one kept), 512 kept; box corners are the
  centre -+ half the size in float, then x, y, the width, the height and the landmarks are
  truncated to integers, the score to ``int(score * 100)``.
"""

from __future__ import annotations

import ctypes
import functools
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np

# (bgr uint8 (H, W, 3), min_score 0-1) -> (confidences 0-100, (x, y, w, h) boxes, landmarks (10,))
DetectFn = Callable[[np.ndarray, float], tuple[np.ndarray, np.ndarray, np.ndarray]]


def split_records(rows: np.ndarray, conf: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``facedetect_cnn``'s int16 records (score 0-100, x, y, w, h, 10 landmark coordinates, ...)
    scoring above ``conf * 100``, split as ``yuface.detect`` returns them: (scores, boxes,
    landmarks), each a copy."""
    rows = rows[rows[:, 0] > conf * 100]
    return rows[:, 0].copy(), rows[:, 1:5].copy(), rows[:, 5:15].copy()


NUM_LAYERS = 53
PAD = 32  # the library pads the image to multiples of this
STRIDES = (8, 16, 32)
# detection_output's arguments in the wheel's objectdetect_cnn (its source on GitHub says 0.5,
# 0.3, 1000, 100; the compiled library passes these).
SCORE_MIN, NMS_IOU, TOP_K, KEEP_TOP_K = 0.2, 0.45, 1000, 512
# Head channels in the graph's output, per level: cls, obj, box (4), landmarks (10).
HEAD_CHANNELS = 16


class _ConvInfo(ctypes.Structure):
    """libfacedetection's ``ConvInfoStruct``: one layer of ``param_pConvInfo``."""

    _fields_ = [("channels", ctypes.c_int), ("num_filters", ctypes.c_int),
                ("is_depthwise", ctypes.c_bool), ("is_pointwise", ctypes.c_bool),
                ("with_relu", ctypes.c_bool), ("weights", ctypes.POINTER(ctypes.c_float)),
                ("biases", ctypes.POINTER(ctypes.c_float))]


def _floats(pointer, n: int) -> np.ndarray:
    """A copy of the ``n`` floats at a ``float*`` of the library."""
    address = ctypes.cast(pointer, ctypes.c_void_p).value
    return np.frombuffer((ctypes.c_float * n).from_address(address), np.float32).copy()


def read_layers(lib_path: Path) -> list[tuple[np.ndarray, np.ndarray]]:
    """The 53 layers' (weight, bias) of the library, weights in ONNX's (out, in / group, kh, kw).

    The library stores a 1x1 layer's weights as (filters, channels), a 3x3 depthwise layer's as
    (9, channels) with taps in row-major order, and applies layer 0 (stored as 16 x 32: 27 taps
    (ky, kx, BGR channel), 5 zeros) to the image as a 3x3 stride-2 convolution.

    Raises:
        ValueError: the library's layer table is not the expected network.
    """
    lib = ctypes.CDLL(str(lib_path))
    table = (_ConvInfo * NUM_LAYERS).in_dll(lib, "param_pConvInfo")
    layers = []
    for i, info in enumerate(table):
        cin, cout = info.channels, info.num_filters
        if info.is_depthwise == info.is_pointwise or (info.is_depthwise and cin != cout):
            raise ValueError(f"{lib_path}: layer {i} is not a 1x1 or a 3x3 depthwise convolution")
        w = _floats(info.weights, 9 * cin if info.is_depthwise else cin * cout)
        b = _floats(info.biases, cout)
        if info.is_depthwise:  # (9, C) -> (C, 1, 3, 3)
            w = w.reshape(9, cin).T.reshape(cin, 1, 3, 3)
        elif i == 0:  # (16, 32): 27 taps ((ky * 3 + kx) * 3 + channel) -> (16, 3, 3, 3)
            w = w.reshape(cout, cin)[:, :27].reshape(cout, 3, 3, 3).transpose(0, 3, 1, 2)
        else:
            w = w.reshape(cout, cin, 1, 1)
        layers.append((np.ascontiguousarray(w), b))
    if layers[0][0].shape != (16, 3, 3, 3) or layers[52][1].shape != (10,):
        raise ValueError(f"{lib_path}: unexpected YuNet layers")
    return layers


class _Graph:
    """Builds the ONNX graph node by node (names generated)."""

    def __init__(self, layers: list[tuple[np.ndarray, np.ndarray]]) -> None:
        self.layers, self.nodes, self.inits, self.n = layers, [], [], 0

    def _name(self, kind: str) -> str:
        self.n += 1
        return f"{kind}{self.n}"

    def op(self, kind: str, inputs: list[str], out: str | None = None, **attrs) -> str:
        from onnx import helper

        out = out or self._name(kind.lower())
        self.nodes.append(helper.make_node(kind, inputs, [out], **attrs))
        return out

    def const(self, value: np.ndarray) -> str:
        from onnx import numpy_helper

        name = self._name("c")
        self.inits.append(numpy_helper.from_array(value, name))
        return name

    def conv(self, x: str, w: np.ndarray, b: np.ndarray, relu: bool, stride: int = 1) -> str:
        k = w.shape[-1]
        group = w.shape[0] if w.shape[1] == 1 and k == 3 else 1
        y = self.op("Conv", [x, self.const(w), self.const(b)], kernel_shape=[k, k],
                    strides=[stride, stride], pads=[k // 2] * 4, group=group)
        return self.op("Relu", [y]) if relu else y

    def block(self, x: str, i: int, relu: bool = True) -> str:
        """Layers i (1x1, no ReLU) and i + 1 (3x3 depthwise)."""
        return self.conv(self.conv(x, *self.layers[i], relu=False), *self.layers[i + 1], relu)

    def unit(self, x: str, i: int) -> str:
        return self.block(self.block(x, i), i + 2)

    def pool(self, x: str) -> str:
        return self.op("MaxPool", [x], kernel_shape=[2, 2], strides=[2, 2])

    def up_add(self, small: str, big: str) -> str:
        scales = self.const(np.array([1, 1, 2, 2], np.float32))
        up = self.op("Resize", [small, "", scales], mode="nearest",
                     coordinate_transformation_mode="asymmetric", nearest_mode="floor")
        return self.op("Add", [up, big])

    def heads(self, x: str, level: int) -> str:
        """The four heads of a level as one block (16 channels), flattened to (1, 16, h * w)."""
        first = [29 + 2 * level, 41 + 2 * level, 35 + 2 * level, 47 + 2 * level]  # cls obj box kps
        pw = [self.layers[i] for i in first]
        dw = [self.layers[i + 1] for i in first]
        y = self.conv(x, np.concatenate([w for w, _ in pw]), np.concatenate([b for _, b in pw]),
                      relu=False)
        y = self.conv(y, np.concatenate([w for w, _ in dw]), np.concatenate([b for _, b in dw]),
                      relu=False)
        return self.op("Reshape", [y, self.const(np.array([1, HEAD_CHANNELS, -1], np.int64))])


def build_model(layers: list[tuple[np.ndarray, np.ndarray]]):
    """The YuNet ONNX model: input ``image`` (1, 3, H, W) float BGR 0-255, H and W multiples of
    32; output ``heads`` (1, 16, N): per prior (stride 8, 16 then 32, each row-major) the logits
    of class and objectness, box offsets and landmark offsets."""
    from onnx import TensorProto, helper

    g = _Graph(layers)
    x = g.conv("image", *layers[0], relu=True, stride=2)
    x = g.pool(g.block(x, 1))
    x = g.unit(g.unit(x, 3), 7)
    fb1 = g.unit(g.pool(x), 11)
    fb2 = g.unit(g.pool(fb1), 15)
    fb3 = g.block(g.unit(g.pool(fb2), 19), 27)
    fb2 = g.block(g.up_add(fb3, fb2), 25)
    fb1 = g.block(g.up_add(fb2, fb1), 23)
    g.op("Concat", [g.heads(fb1, 0), g.heads(fb2, 1), g.heads(fb3, 2)], out="heads", axis=2)
    graph = helper.make_graph(
        g.nodes, "yunet", [helper.make_tensor_value_info("image", TensorProto.FLOAT,
                                                         [1, 3, "height", "width"])],
        [helper.make_tensor_value_info("heads", TensorProto.FLOAT, [1, HEAD_CHANNELS, "n"])],
        g.inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)],
                             producer_name="fermixnet")


def make_session(lib_path: Path, layers: list[tuple[np.ndarray, np.ndarray]] | None = None,
                 threads: int = 1):
    """An ONNX Runtime session of the network on ``threads`` threads, without spinning (by
    default one: the calling threads are the parallelism; spinning threads cost CPU on a loaded
    machine)."""
    import onnxruntime as ort

    model = build_model(read_layers(lib_path) if layers is None else layers)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads, opts.inter_op_num_threads = threads, 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.add_session_config_entry("session.inter_op.allow_spinning", "0")
    return ort.InferenceSession(model.SerializeToString(), opts,
                                providers=["CPUExecutionProvider"])


@functools.lru_cache(maxsize=16)
def _priors(height: int, width: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each prior's corner x and y and its stride (float32, N) for a padded (height, width)."""
    xs, ys, ss = [], [], []
    for s in STRIDES:
        rows, cols = np.meshgrid(np.arange(height // s), np.arange(width // s), indexing="ij")
        xs.append((cols.ravel() * s).astype(np.float32))
        ys.append((rows.ravel() * s).astype(np.float32))
        ss.append(np.full(rows.size, s, np.float32))
    return np.concatenate(xs), np.concatenate(ys), np.concatenate(ss)


def _sigmoid(v: np.ndarray) -> np.ndarray:
    v = np.clip(v, np.float32(-88.3762626647949), np.float32(88.3762626647949))
    return np.float32(1) / (np.float32(1) + np.exp(-v))


def _nms(boxes: np.ndarray) -> list[int]:
    """Greedy NMS over (x0, y0, x1, y1) boxes sorted by score: the indices kept (a box is kept
    when its IoU with every box kept before it is at most NMS_IOU)."""
    x0, y0, x1, y1 = boxes.T
    area = (x1 - x0) * (y1 - y0)
    order = np.arange(len(boxes))
    keep: list[int] = []
    while order.size and len(keep) < KEEP_TOP_K:
        i, rest = order[0], order[1:]
        keep.append(int(i))
        iw = np.minimum(x1[i], x1[rest]) - np.maximum(x0[i], x0[rest])
        ih = np.minimum(y1[i], y1[rest]) - np.maximum(y0[i], y0[rest])
        inter = iw * ih
        overlap = np.where((iw > 0) & (ih > 0), inter / (area[i] + area[rest] - inter), 0)
        order = rest[overlap <= NMS_IOU]
    return keep


def decode(heads: np.ndarray, height: int, width: int) -> np.ndarray:
    """libfacedetection's faces from the graph's (16, N) output for a padded (height, width)
    image: (K, 15) int16 rows of score 0-100, x, y, w, h and ten landmark coordinates."""
    score = np.sqrt(_sigmoid(heads[0]) * _sigmoid(heads[1]))
    idx = np.flatnonzero(score >= SCORE_MIN)
    idx = idx[np.argsort(-score[idx], kind="stable")][:TOP_K]
    px, py, stride = (p[idx] for p in _priors(height, width))
    d = heads[:, idx]
    cx, cy = d[2] * stride + px, d[3] * stride + py
    w, h = np.exp(d[4]) * stride, np.exp(d[5]) * stride
    boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)
    kps = d[6:16] * stride + np.stack([px, py] * 5)  # (10, K): x, y of each point
    keep = _nms(boxes)
    b, s = boxes[keep], score[idx][keep]
    rows = np.column_stack([np.trunc(s * np.float32(100)), np.trunc(b[:, :2]),
                            np.trunc(b[:, 2:] - b[:, :2]), np.trunc(kps[:, keep].T)])
    return rows.astype(np.int16).reshape(-1, 15)


def prepare(bgr: np.ndarray) -> np.ndarray:
    """(1, 3, H', W') float32 of a (H, W, 3) uint8 BGR image, zero-padded to multiples of 32."""
    h, w = bgr.shape[:2]
    x = np.zeros((1, 3, -(-h // PAD) * PAD, -(-w // PAD) * PAD), np.float32)
    x[0, :, :h, :w] = bgr.transpose(2, 0, 1)
    return x


_lock = threading.Lock()
_sessions: dict[str, object] = {}


def session_detect(session) -> DetectFn:
    """``facedetect_cnn``'s contract (as ``yunet._library_detect``) over a session of
    :func:`make_session`: (bgr uint8 (H, W, 3), min_score 0-1) -> (confidences 0-100, (x, y, w,
    h) boxes, landmarks (10,)), int16, best first; faces scoring ``min_score * 100`` or less are
    dropped. Safe to call from several threads at once (ONNX Runtime's ``run`` is)."""

    def detect(bgr: np.ndarray, conf: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        x = prepare(bgr)
        (heads,) = session.run(["heads"], {"image": x})
        return split_records(decode(heads[0], x.shape[2], x.shape[3]), conf)

    return detect


def onnx_detect(package_dir: Path, threads: int = 1) -> DetectFn | None:
    """:func:`session_detect` over the wheel's network (``package_dir``: yuface's folder) on
    ``threads`` threads; None where the wheel has no loadable library or onnx / onnxruntime is
    missing. One session per thread count is built per process (under a lock) and serves every
    thread."""
    lib_path = package_dir / "libfacedetection.so"
    key = f"{lib_path}:{threads}"
    with _lock:
        session = _sessions.get(key)
        if session is None:
            try:
                session = make_session(lib_path, threads=threads)
            except (OSError, ImportError, ValueError):
                return None
            _sessions[key] = session
    return session_detect(session)
