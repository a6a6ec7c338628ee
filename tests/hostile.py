"""What a hostile user plants: a TorchScript file whose own code writes a file (or never
ends), crafted image and array files. Kept apart so each test reads as what it makes happen."""

import io
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np
import torch
from torch import nn


class Overwriter(nn.Module):
    """A classifier whose forward also writes 88s into ``victim`` (through a shared
    memory map, as the issue's file did), and loops forever when ``endless``."""

    def __init__(self, victim: str, endless: bool, in_features: int, classes: int):
        super().__init__()
        self.victim = victim
        self.endless = endless
        self.head = nn.Linear(in_features, classes)

    def forward(self, x):
        mapped = torch.from_file(self.victim, shared=True, size=4, dtype=torch.uint8)
        mapped.fill_(88)
        y = x
        while self.endless and bool(y.sum() > -1.0):
            y = y * 1.0
        return self.head(y.flatten(1)) + mapped[:1].float() * 0  # used, so it is not pruned


def overwriter(path: Path, victim: Path, endless: bool = False, shape=(1, 16, 16), classes=4) -> Path:
    model = Overwriter(str(victim), endless, int(np.prod(shape)), classes)
    torch.jit.save(torch.jit.script(model), str(path))
    return path


def png_header(path: Path, width: int, height: int) -> Path:
    """A PNG that declares width x height grey pixels (Pillow checks the size as it opens)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
                     + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b""))
    return path


def npz_declaring(path: Path, shape) -> Path:
    """An .npz whose x_train header declares ``shape`` (uint8) over a few bytes of data."""
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "|u1", "fortran_order": False,
                                                  "shape": tuple(shape)})
    labels = io.BytesIO()
    np.save(labels, np.zeros(4, dtype=np.int64))
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("x_train.npy", header.getvalue() + b"\0" * 2000)
        archive.writestr("y_train.npy", labels.getvalue())
    return path
