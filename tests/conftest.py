import contextlib
import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path:
    """Real datasets: $NAS_DATA_DIR, else ../shared/data beside the checkout (as in CI)."""
    return Path(os.environ.get("NAS_DATA_DIR") or REPO.parent / "shared" / "data")


@pytest.fixture(scope="session")
def mnist_dir(tmp_path_factory) -> Path:
    """A data dir holding real MNIST: the shared one (as in CI), else one made of the
    package's embedded copy (the same published files), so a user's clone tests too."""
    path = shared_data_dir()
    if (path / "MNIST" / "raw" / "train-images-idx3-ubyte.gz").is_file():
        return path
    from nas.datasets import idx

    path = tmp_path_factory.mktemp("embedded-data")
    (path / "MNIST").mkdir()
    (path / "MNIST" / "raw").symlink_to(idx.embedded("MNIST"))
    return path


@pytest.fixture(scope="session")
def searched_synthetic(tmp_path_factory):
    """``search(space, trials, epochs)``: the folder of one real search on synthetic data
    (budget 20k), run once per session for each set of arguments. Tests that write into a
    study take a copy (``copy_study``)."""
    import contextlib
    import io

    from nas.cli import main

    done = {}

    def search(space: str, trials: int, epochs: int) -> tuple[Path, str]:
        key = (space, trials, epochs)
        if key not in done:
            runs = tmp_path_factory.mktemp(f"searched-{space}-{trials}x{epochs}") / "runs"
            args = ["search", "--dataset", "synthetic", "--space", space, "--budget", 20_000,
                    "--trials", trials, "--epochs", epochs, "--runs-dir", runs, "--study", "syn",
                    "--no-progress"]
            with contextlib.redirect_stdout(io.StringIO()) as out:
                assert main([str(a) for a in args]) == 0
            done[key] = (runs / "syn", out.getvalue())
        return done[key]

    return search


@contextlib.contextmanager
def read_only(folder: Path):
    """``folder`` made read-only for real: chmod for a user, the immutable flag for root
    (whom permissions do not stop)."""
    if os.geteuid() == 0:
        subprocess.run(["chattr", "+i", str(folder)], check=True)
    else:
        folder.chmod(0o555)
    try:
        yield folder
    finally:
        if os.geteuid() == 0:
            subprocess.run(["chattr", "-i", str(folder)], check=True)
        else:
            folder.chmod(0o755)


def without_progress(err: str) -> list[str]:
    """stderr's lines but the slow-step ones (nas.progress: 'nas: ...: done in 1.2 s'),
    which a loaded machine prints where an idle one does not."""
    import re

    return [line for line in err.strip().splitlines()
            if not re.fullmatch(r"nas: .*: done in [\d.]+ s", line)]


def copy_study(original: Path, study_dir: Path) -> Path:
    """A private copy of a study folder, its journal file included, that reads its own journal."""
    import json
    import shutil

    from nas.study_folder import default_storage

    shutil.copytree(original, study_dir)
    pointer = json.loads((study_dir / "study.json").read_text())
    pointer["storage"] = default_storage(study_dir)
    (study_dir / "study.json").write_text(json.dumps(pointer))
    return study_dir


def writable_study(study_dir: Path):
    """A test's own study, opened to be changed (nas's commands open studies read-only)."""
    import optuna

    from nas import storage
    from nas.study_folder import read_pointer

    meta = read_pointer(study_dir)
    return optuna.load_study(study_name=meta["study_name"], storage=storage.open_storage(meta["storage"]))


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


def dashboard_study_names(storage_url: str) -> set[str]:
    """Start the real optuna-dashboard on loopback against ``storage_url`` (its own storage
    loader opens it) and return the study names its API lists."""
    import json
    import socket
    import subprocess
    import time
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen(["optuna-dashboard", storage_url, "--host", "127.0.0.1",
                               "--port", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        # Until it answers, or its process ends (a dashboard that cannot start): how long it
        # takes to start on a loaded machine is not what is tested.
        while server.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies", timeout=10) as r:
                    return {s["study_name"] for s in json.loads(r.read())["study_summaries"]}
            except OSError:
                time.sleep(0.3)
        raise AssertionError(f"optuna-dashboard exited with {server.returncode} before it answered")
    finally:
        server.terminate()
        server.wait(timeout=10)
