import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path:
    """Real datasets: $NAS_DATA_DIR, else ../shared/data beside the checkout (as in CI)."""
    return Path(os.environ.get("NAS_DATA_DIR") or REPO.parent / "shared" / "data")


@pytest.fixture
def mnist_dir() -> Path:
    path = shared_data_dir()
    if not (path / "MNIST" / "raw" / "train-images-idx3-ubyte.gz").is_file():
        pytest.fail(f"real MNIST not found under {path}; set NAS_DATA_DIR")  # never skip silently
    return path


@pytest.fixture
def run(tmp_path, capsys):
    """Run the real CLI in-process; returns (exit code, stdout, stderr)."""
    from nas.cli import main

    def _run(*args):
        code = main([str(a) for a in args])
        out, err = capsys.readouterr()
        return code, out, err

    return _run


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory, monkeypatch):
    """Decoded-dataset cache in a temporary folder, never the user's ~/.cache."""
    monkeypatch.setenv("NAS_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "nas-cache"))
