"""Learnable toy data for tests: each class is a fixed random pattern, plus noise."""

from __future__ import annotations

import numpy as np


def make(n_train: int = 1500, n_test: int = 400, size: int = 16, num_classes: int = 4,
         seed: int = 0):
    rng = np.random.default_rng(seed)
    prototypes = rng.uniform(0, 255, (num_classes, 1, size, size))

    def sample(n):
        y = rng.integers(0, num_classes, n)
        x = prototypes[y] * 0.5 + rng.uniform(0, 127, (n, 1, size, size))
        return x.astype(np.uint8), y

    return ({"train": sample(n_train), "test": sample(n_test)},
            tuple(f"class{i}" for i in range(num_classes)))


def read(request):
    return make()
