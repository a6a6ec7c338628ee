"""A short search on real MNIST (the published idx .gz files, read where they lie), then
the exported TorchScript file classifies the real test images at its stated accuracy."""

import gzip
import json

import numpy as np
import optuna
import torch

from nas.storage import load_study


def read_idx(path, offset):
    with gzip.open(path, "rb") as f:
        return np.frombuffer(f.read(), np.uint8, offset=offset)


def test_real_mnist_search_and_export(tmp_path, run, mnist_dir):
    before = sorted(p.name for p in (mnist_dir / "MNIST" / "raw").iterdir())
    # Plain convs: this test is about the real files' path through search and export, and a
    # CPU trains them several times faster than depthwise blocks (the MobileNet-style space
    # is searched in tests/test_budget.py and tests/test_search.py).
    code, out, err = run("search", "--space", "cnn", "--budget", 50_000, "--dataset", "mnist",
                         "--data-dir", mnist_dir, "--limit-train", 4000, "--trials", 3,
                         "--epochs", 2, "--pruner", "none", "--runs-dir", tmp_path,
                         "--max-macs", 1_000_000, "--fill", 0.9,  # cheap trials that use the budget
                         "--no-progress")
    assert code == 0, err
    study_dir = tmp_path / "mnist-50k"  # the default study name
    study = load_study(study_dir)
    best = max(t.value for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE)
    # Three random draws decide how good the best is (quality is measured in benchmarks/):
    # here, that the nets learned the real digits, far above chance (0.1).
    assert best > 0.5, out
    # The data dir was only read.
    assert sorted(p.name for p in (mnist_dir / "MNIST" / "raw").iterdir()) == before

    model_path = tmp_path / "mnist.pt"
    code, out, err = run("export", study_dir, "--best", "--out", model_path,
                         "--data-dir", mnist_dir)
    assert code == 0, err
    meta = json.loads(model_path.with_suffix(".json").read_text())
    assert meta["params"] <= 50_000 and meta["val_acc"] == best

    raw = mnist_dir / "MNIST" / "raw"
    images = read_idx(raw / "t10k-images-idx3-ubyte.gz", 16).reshape(-1, 1, 28, 28)
    labels = torch.from_numpy(read_idx(raw / "t10k-labels-idx1-ubyte.gz", 8).astype(np.int64))
    model = torch.jit.load(str(model_path))
    with torch.no_grad():
        predictions = torch.cat([model(torch.from_numpy(images[i:i + 1000].copy()).float() / 255)
                                 .argmax(1) for i in range(0, 10_000, 1000)])
    accuracy = (predictions == labels).float().mean().item()
    assert accuracy > 0.5
    assert abs(accuracy - meta["test_acc"]) < 1e-6

    # A retrain is a long training: with no --augment it warps digits as a --time search's
    # final training does, though the search's trials saw them unwarped.
    code, out, err = run("train", study_dir, "--best", "--epochs", 1, "--limit-train", 300,
                         "--data-dir", mnist_dir)
    assert code == 0, err
    assert "augment affine," in out
    retrained = json.loads(next((study_dir / "retrained").glob("trial-*.json")).read_text())
    assert retrained["augment"] == "affine"
