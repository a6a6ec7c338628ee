"""A TorchScript file read as data: its tensors by name, shape and value, without its code.

``torch.jit.load`` compiles the file's code, and the file decides what that code does when
the model runs (or when it loads, through a ``__setstate__``): write files, loop forever.
A file nas export wrote needs none of that: it is a zip of ``data.pkl`` (the module tree:
objects of ``__torch__`` classes whose state holds tensors), ``data/N`` (the tensors'
storages) and ``code/``. Here ``data.pkl`` is read by an unpickler that knows only the few
globals TorchScript writes for a module tree and refuses any other, and the tensors are
taken from ``data/N`` as bytes. The caller rebuilds the model from the sidecar's spec (our
own code) and checks the file's tensors against it, name by name and shape by shape.
"""

from __future__ import annotations

import io
import math
import pickle
import zipfile
from dataclasses import dataclass
from pathlib import Path

import torch

from nas.errors import UsageError

MAX_PICKLE_BYTES = 16 << 20  # a module tree of a few hundred layers is tens of kilobytes
STORAGE_DTYPES = {f"{name}Storage": dtype for name, dtype in (
    ("Float", torch.float32), ("Double", torch.float64), ("Half", torch.float16),
    ("BFloat16", torch.bfloat16), ("Long", torch.int64), ("Int", torch.int32),
    ("Short", torch.int16), ("Char", torch.int8), ("Byte", torch.uint8), ("Bool", torch.bool))}


@dataclass(frozen=True)
class TensorRef:
    """Where a tensor's values lie in the file, and its shape: nothing read yet."""
    key: str  # data/<key> in the zip
    dtype: torch.dtype
    storage_numel: int
    offset: int
    size: tuple[int, ...]
    stride: tuple[int, ...]


class _Module:
    """An object of a ``__torch__`` class: only its state (a dict) is kept."""

    def __setstate__(self, state) -> None:
        self.state = state if isinstance(state, dict) else {}


def _rebuild_tensor(storage, offset, size, stride, *_):
    if not isinstance(storage, tuple) or len(storage) != 3:
        raise pickle.UnpicklingError("a tensor without a storage")
    key, dtype, numel = storage
    return TensorRef(key, dtype, numel, int(offset), tuple(map(int, size)), tuple(map(int, stride)))


class _Unpickler(pickle.Unpickler):
    ALLOWED = {("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
               ("collections", "OrderedDict"): dict,
               **{("torch.jit._pickle", f"build_{kind}list"): list
                  for kind in ("int", "double", "bool", "tensor")}}

    def find_class(self, module: str, name: str):
        if module.startswith("__torch__.") or module == "__torch__":
            return type(name, (_Module,), {})  # a stand-in: no method of the file's runs
        if module == "torch" and name in STORAGE_DTYPES:
            return STORAGE_DTYPES[name]
        if (module, name) in self.ALLOWED:
            return self.ALLOWED[(module, name)]
        raise pickle.UnpicklingError(f"it holds a {module}.{name}, which a module tree does not")

    def persistent_load(self, pid):
        if (not isinstance(pid, tuple) or len(pid) != 5 or pid[0] != "storage"
                or not isinstance(pid[1], torch.dtype)):
            raise pickle.UnpicklingError("a storage reference TorchScript does not write")
        return str(pid[2]), pid[1], int(pid[4])


def _archive(path: Path) -> tuple[zipfile.ZipFile, str]:
    try:
        archive = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as exc:
        raise UsageError(f"{path} is not a TorchScript file ({exc})") from None
    pickles = [n for n in archive.namelist() if n.endswith("/data.pkl") and n.count("/") == 1]
    if len(pickles) != 1:
        archive.close()
        raise UsageError(f"{path} is not a TorchScript file (no data.pkl in it)")
    return archive, pickles[0].split("/")[0]


def read_tensors(path: Path) -> dict[str, TensorRef]:
    """Every tensor of the module tree by its dotted name (``net.blocks.0.conv.0.weight``)."""
    archive, root = _archive(path)
    with archive:
        info = archive.getinfo(f"{root}/data.pkl")
        if info.file_size > MAX_PICKLE_BYTES:
            raise UsageError(f"{path}: its module tree is {info.file_size:,} bytes; a model nas "
                             f"exports has one of kilobytes")
        try:
            tree = _Unpickler(io.BytesIO(archive.read(info))).load()
        except Exception as exc:  # anything a crafted pickle can raise: not a module tree
            raise UsageError(f"{path} is not a TorchScript module nas can read as data: "
                             f"{str(exc)[:200]}") from None
        tensors: dict[str, TensorRef] = {}

        def walk(node, prefix: str) -> None:
            if isinstance(node, TensorRef):
                tensors[prefix] = node
            elif isinstance(node, _Module):
                for name, value in node.state.items():
                    if isinstance(name, str):
                        walk(value, f"{prefix}.{name}" if prefix else name)

        walk(tree, "")
        for name, ref in tensors.items():
            needed = ref.offset + sum((s - 1) * st for s, st in zip(ref.size, ref.stride)) + 1
            member = f"{root}/data/{ref.key}"
            stored = archive.getinfo(member).file_size if member in archive.namelist() else -1
            if math.prod(ref.size) and (needed > ref.storage_numel
                                        or stored != ref.storage_numel * ref.dtype.itemsize):
                raise UsageError(f"{path}: tensor {name} does not fit its storage in the file")
    return tensors


def load_tensors(path: Path, names: list[str]) -> dict[str, torch.Tensor]:
    """The values of the named tensors (as read_tensors lists them), read as bytes."""
    refs = read_tensors(path)
    archive, root = _archive(path)
    with archive:
        result = {}
        for name in names:
            ref = refs[name]
            data = bytearray(archive.read(f"{root}/data/{ref.key}"))
            storage = torch.frombuffer(data, dtype=ref.dtype) if data else torch.empty(0, dtype=ref.dtype)
            result[name] = storage.as_strided(ref.size, ref.stride, ref.offset).clone()
    return result
