"""int8 ONNX files: a trained net quantized after training by onnxruntime's static
quantizer (int8 weights per output channel, int8 activations calibrated on training
images, int32 biases), written in the QDQ format (each quantized tensor stored as int8
with a DequantizeLinear node, activations passed through QuantizeLinear/DequantizeLinear
pairs), and run in onnxruntime to score it and to read the memory it used.

The file takes what the fp32 ONNX export takes: float images in [0, 1], (N, C, H, W),
normalisation built in. onnx and onnxruntime are the [onnx] extra.
"""

from __future__ import annotations

import json
import os
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from nas.errors import UsageError

ONNX_EXTRA = "pip install 'nas[onnx]'"
INPUT = "images"  # the input name nas.export.write_onnx gives


def need() -> None:
    """One line saying how to install what an int8 ONNX export needs, if it is missing."""
    try:
        import onnx, onnxruntime, onnxscript  # noqa: F401, E401
        import onnxruntime.quantization  # noqa: F401
    except ImportError as exc:
        raise UsageError(f"int8 ONNX export needs the {exc.name} package, which is not "
                         f"installed here: {ONNX_EXTRA}") from None


def quantize(net: nn.Module, calibration: torch.Tensor) -> bytes:
    """The QDQ .onnx bytes of ``net`` (eval mode, taking [0, 1] NCHW images), its activation
    ranges measured on ``calibration`` (the same kind of images)."""
    need()
    from onnxruntime.quantization import (CalibrationDataReader, QuantFormat, QuantType,
                                          quantize_static)
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from nas.export import write_onnx

    class Images(CalibrationDataReader):
        def __init__(self):
            self.left = iter(calibration.split(1))

        def get_next(self):
            image = next(self.left, None)
            return None if image is None else {INPUT: image.contiguous().numpy()}

    with tempfile.TemporaryDirectory() as folder:
        fp32, folded, int8 = (os.path.join(folder, f"{name}.onnx") for name in ("fp32", "folded", "int8"))
        write_onnx(fp32, net, calibration[:1])  # what --format onnx writes, in fp32
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the quantizer's chatter; the checks are the caller's
            quant_pre_process(fp32, folded)  # shapes inferred, batch norm folded into the convs
            quantize_static(folded, int8, Images(), quant_format=QuantFormat.QDQ, per_channel=True,
                            activation_type=QuantType.QInt8, weight_type=QuantType.QInt8)
        return Path(int8).read_bytes()


class OnnxRuntime:
    """A QDQ .onnx file in onnxruntime's CPU session."""

    def __init__(self, model: bytes):
        import onnxruntime

        self.model = model
        try:
            self.session = onnxruntime.InferenceSession(model, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph types
            raise UsageError(f"onnxruntime refuses the int8 model: {' '.join(str(exc).split())[:200]}") from None

    def predict(self, images: torch.Tensor) -> np.ndarray:
        """Class of each [0, 1] NCHW image, a thousand at a time."""
        return np.concatenate([
            self.session.run(None, {INPUT: chunk.contiguous().numpy()})[0].argmax(1)
            for chunk in images.split(1000)])

    def peak_bytes(self, image: torch.Tensor) -> int:
        """The largest number of bytes onnxruntime's CPU arena held while it ran one image
        (its profile's ``mem_in_use_peak``). onnxruntime runs the ops between a
        DequantizeLinear and a QuantizeLinear in float32, so this is the memory of that
        runtime, not of an int8 kernel library on a device."""
        import onnxruntime

        with tempfile.TemporaryDirectory() as folder:
            options = onnxruntime.SessionOptions()
            options.enable_profiling = True
            options.profile_file_prefix = os.path.join(folder, "profile")
            session = onnxruntime.InferenceSession(self.model, options, providers=["CPUExecutionProvider"])
            session.run(None, {INPUT: image[None].contiguous().numpy()})
            events = json.loads(Path(session.end_profiling()).read_text())
        peaks = [int(e["args"]["mem_in_use_peak"]) for e in events
                 if e.get("cat") == "Node" and "mem_in_use_peak" in e.get("args", {})]
        if not peaks:
            raise RuntimeError("onnxruntime's profile reported no memory figures")
        return max(peaks)


def stored_bytes(model: bytes) -> int:
    """Bytes of the weights and biases the file stores as integers: the int8 tensors of two
    or more dimensions and the int32 tensors that its DequantizeLinear nodes read (zero
    points and scales are the quantization's bookkeeping, as in the .tflite count)."""
    import onnx
    from onnx import numpy_helper

    graph = onnx.load_from_string(model).graph
    stored = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    total, seen = 0, set()
    for node in graph.node:
        if node.op_type != "DequantizeLinear" or node.input[0] not in stored or node.input[0] in seen:
            continue
        seen.add(node.input[0])
        values = stored[node.input[0]]
        if (values.dtype == np.int8 and values.ndim >= 2) or values.dtype == np.int32:
            total += values.nbytes
    return total
