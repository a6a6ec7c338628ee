"""CIFAR-10/100 and SVHN through torchvision, which checks each file's md5."""

from __future__ import annotations

import numpy as np

from nas.errors import DataError


def read(request, *, name: str, cls: str, folder: str, train_args: dict, test_args: dict):
    import torchvision.datasets

    root = request.path or request.root
    if not (root / folder).exists() and not request.download:
        raise DataError(f"dataset {name!r} not found in data dir {root} (looked for "
                        f"{root / folder}); point --data-dir or NAS_DATA_DIR at its parent "
                        f"folder, or add --download")
    dataset_cls = getattr(torchvision.datasets, cls)
    try:
        train, test = (dataset_cls(str(root), download=request.download, **args)
                       for args in (train_args, test_args))
    except (RuntimeError, ImportError) as exc:  # torchvision's integrity check; scipy for SVHN
        raise DataError(f"dataset {name!r} in {root} is unusable: {exc}") from None
    if cls == "SVHN":  # already N, C, H, W; labels are digits
        return ({"train": (train.data, train.labels), "test": (test.data, test.labels)},
                tuple(str(i) for i in range(10)))
    return ({"train": (_to_nchw(train.data), train.targets), "test": (_to_nchw(test.data), test.targets)},
            tuple(train.classes))


def _to_nchw(images: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(images.transpose(0, 3, 1, 2))
