"""int8 models for microcontrollers: a trained net quantized after training (static: int8
weights per output channel, int8 activations calibrated on training images, int32
biases) into a .tflite file by litert-torch, and run by TFLite Micro's own interpreter
(the tflite-micro package) to score it and to read the arena it needs.

The file takes the normalised image (the dataset's mean and std applied), channels last,
as int8: ``quantize_input`` says how; a device folds that into one table from pixel
value to int8. Both packages are optional: ``pip install 'nas[mcu]'``.
"""

from __future__ import annotations

import contextlib
import copy
import importlib
import os
import re
import tempfile
import warnings
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from nas.errors import UsageError

MCU_EXTRA = "pip install 'nas[mcu]'"


def need(module: str, package: str):
    """Import an optional package's module, or one line saying how to install it."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # TensorFlow's start-up chatter
    try:
        with _quiet(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return importlib.import_module(module)
    except ImportError as exc:
        raise UsageError(f"int8 export needs the {package} package, which is not installed "
                         f"({exc.msg}): {MCU_EXTRA}") from None


def quantize(net: nn.Module, calibration: torch.Tensor) -> bytes:
    """The .tflite bytes of ``net`` (eval mode, normalised NCHW input) quantized to int8
    with its activation ranges measured on ``calibration`` (normalised images, NCHW)."""
    litert_torch = need("litert_torch", "litert-torch")
    pt2e = need("litert_torch.quantize.pt2e_quantizer", "litert-torch")
    quant_config = need("litert_torch.quantize.quant_config", "litert-torch")
    quantize_pt2e = need("torchao.quantization.pt2e.quantize_pt2e", "torchao")

    net = litert_torch.to_channel_last_io(with_silu_as_product(net).eval(), args=[0])  # HWC images
    one = calibration[:1].permute(0, 2, 3, 1).contiguous()
    quantizer = pt2e.PT2EQuantizer().set_global(
        pt2e.get_symmetric_quantization_config(is_per_channel=True, is_dynamic=False))
    with _quiet():
        graph = torch.export.export(net, (one,), strict=True).module()
        prepared = quantize_pt2e.prepare_pt2e(graph, quantizer)
        for image in calibration.permute(0, 2, 3, 1):  # the exported graph takes one image
            prepared(image[None].contiguous())
        converted = quantize_pt2e.convert_pt2e(prepared, fold_quantize=False)
        try:
            edge = litert_torch.convert(converted, (one,),
                                        quant_config=quant_config.QuantConfig(pt2e_quantizer=quantizer))
        except (ValueError, RuntimeError) as exc:  # the converter's own refusal, e.g. a scale rule
            said = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise UsageError(f"litert-torch cannot convert this net to int8: {said[:300]}") from None
        with tempfile.TemporaryDirectory() as folder:
            path = os.path.join(folder, "model.tflite")
            edge.export(path)
            with open(path, "rb") as f:
                return f.read()


class SiLUAsProduct(nn.Module):
    """x * sigmoid(x): the same function as nn.SiLU, in the two ops the quantizer makes
    int8 (it leaves a fused silu in float32, four bytes an element in the arena)."""

    def forward(self, x):
        return x * torch.sigmoid(x)


def with_silu_as_product(net: nn.Module) -> nn.Module:
    """A copy of ``net`` whose nn.SiLU modules are SiLUAsProduct."""
    net = copy.deepcopy(net)
    for parent in list(net.modules()):
        for name, child in parent.named_children():
            if isinstance(child, nn.SiLU):
                setattr(parent, name, SiLUAsProduct())
    return net


@contextlib.contextmanager
def _quiet():
    """The converter's progress lines and MLIR warnings go to the process's stdout and
    stderr from C++: kept off the user's terminal."""
    saved = [os.dup(1), os.dup(2)]
    with open(os.devnull, "w") as null:
        os.dup2(null.fileno(), 1)
        os.dup2(null.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)


@dataclass(frozen=True)
class Arena:
    activations: int  # bytes of the arena's planned part: the tensors the ops read and write
    total: int  # the whole arena the runtime used, its bookkeeping included


class MicroRuntime:
    """A .tflite file in TFLite Micro's interpreter."""

    def __init__(self, model: bytes):
        runtime = need("tflite_micro.python.tflite_micro.runtime", "tflite-micro")
        if model[4:8] != b"TFL3":  # the flatbuffer's file identifier
            raise UsageError("TFLite Micro refuses the int8 model: not a TFLite file (no TFL3 "
                             "identifier)")
        try:
            self.interpreter = runtime.Interpreter.from_bytes(model, arena_size=max(len(model) * 10, 1 << 20))
        except (RuntimeError, ValueError) as exc:
            raise UsageError(f"TFLite Micro refuses the int8 model: {str(exc).strip()[:200]}") from None
        details = self.interpreter.get_input_details(0)
        self.input_shape = tuple(int(v) for v in details["shape"])
        (self.input_scale,) = details["quantization_parameters"]["scales"].tolist()
        (self.input_zero,) = details["quantization_parameters"]["zero_points"].tolist()

    def quantize_input(self, images: torch.Tensor) -> np.ndarray:
        """Normalised NCHW float images as the file's int8 NHWC input."""
        q = torch.round(images.permute(0, 2, 3, 1) / self.input_scale) + self.input_zero
        return q.clamp(-128, 127).to(torch.int8).numpy()

    def predict(self, images: torch.Tensor) -> np.ndarray:
        """Class of each normalised image (NCHW), one inference at a time as on a device."""
        classes = []
        for image in self.quantize_input(images):
            self.interpreter.set_input(image[None], 0)
            self.interpreter.invoke()
            classes.append(int(np.argmax(self.interpreter.get_output(0))))
        return np.array(classes)

    def arena(self) -> Arena:
        """What the arena held, as TFLite Micro's recording allocator reports it (after an
        inference)."""
        text = _captured_stderr(self.interpreter.print_allocations)
        found = {key: int(value) for key, value in
                 re.findall(r"Arena allocation (total|head) (\d+) bytes", text)}
        if set(found) != {"total", "head"}:
            raise RuntimeError(f"TFLite Micro's allocation report was not understood: {text[:200]!r}")
        return Arena(found["head"], found["total"])


def _captured_stderr(call) -> str:
    with tempfile.TemporaryFile(mode="w+") as out:
        saved = os.dup(2)
        os.dup2(out.fileno(), 2)
        try:
            call()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        out.seek(0)
        return out.read()


def stored_bytes(model: bytes) -> int:
    """Bytes of the weights and biases the .tflite file stores for its conv and fully
    connected ops (their constant inputs past the first), read from its flatbuffer."""
    schema = need("tflite_micro.tensorflow.lite.micro.python.schema_py_generated", "tflite-micro")
    runtime = need("tflite_micro.python.tflite_micro.runtime", "tflite-micro")
    parsed = runtime.convert_bytearray_to_object(bytearray(model))
    op = schema.BuiltinOperator
    weighted = {op.CONV_2D, op.DEPTHWISE_CONV_2D, op.FULLY_CONNECTED}
    graph, total, seen = parsed.subgraphs[0], 0, set()
    for operator in graph.operators:
        code = runtime.get_builtin_code_from_operator_code(parsed.operatorCodes[operator.opcodeIndex])
        if code not in weighted:
            continue
        for index in list(operator.inputs)[1:]:
            if index < 0 or index in seen:
                continue
            seen.add(index)
            data = parsed.buffers[graph.tensors[index].buffer].data
            total += 0 if data is None else len(data)
    return total
