"""A real PostgreSQL server on 127.0.0.1 (Debian's package; `.ci/run` installs it when
missing) holds one study that two `nas search` processes fill together, as two machines
would; then optuna-dashboard opens it."""

import glob
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import optuna
import pytest

from conftest import dashboard_study_names
from nas.storage import load_study


def _postgres_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), reverse=True)
    path = found[0] if found else shutil.which("initdb")
    return Path(path).parent if path else None


@pytest.fixture(scope="module")
def postgres_url():
    bin_dir = _postgres_bin()
    if bin_dir is None:
        message = "PostgreSQL server binaries (initdb, pg_ctl) not found; apt-get install postgresql"
        if os.environ.get("CI"):
            pytest.fail(message)  # CI installs it (.ci/run): never skip there
        pytest.skip(message)
    # The server refuses to run as root; then it runs as Debian's 'postgres' user.
    as_user = {"user": "postgres", "group": "postgres"} if os.geteuid() == 0 else {}
    work = Path(tempfile.mkdtemp(prefix="nas-pg-"))
    if as_user:
        entry = pwd.getpwnam("postgres")
        os.chown(work, entry.pw_uid, entry.pw_gid)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    data = work / "data"
    subprocess.run([bin_dir / "initdb", "-D", data, "-U", "postgres", "--auth=trust"],
                   check=True, capture_output=True, **as_user)
    subprocess.run([bin_dir / "pg_ctl", "-D", data, "-l", work / "log", "-w", "-o",
                    f"-p {port} -k {work} -c listen_addresses=127.0.0.1", "start"],
                   check=True, capture_output=True, **as_user)
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([bin_dir / "pg_ctl", "-D", data, "-m", "immediate", "stop"],
                       capture_output=True, **as_user)
        shutil.rmtree(work, ignore_errors=True)


def _trials_so_far(url: str) -> list:
    """The shared study's trials, or none while the first search has not created it yet."""
    try:
        return optuna.load_study(study_name="shared", storage=url).trials
    except KeyError:
        return []


def test_two_searches_fill_one_postgresql_study_and_the_dashboard_opens_it(tmp_path, postgres_url):
    cmd = [sys.executable, "-m", "nas", "search", "--dataset", "synthetic", "--space", "cnn",
           "--budget", "15000", "--limit-train", "128", "--epochs", "1",
           "--pruner", "none", "--study", "shared", "--storage", postgres_url, "--no-progress"]
    # Two "machines": each its own runs folder, one database. The second starts once the
    # first has finished a trial, and --trials is the study's total, which the first (6)
    # reaches before the second (12): so both take part, whichever is faster, and they
    # write to the one study at the same time for as long as both run.
    def machine(i: int, trials: int) -> subprocess.Popen:
        return subprocess.Popen(cmd + ["--trials", str(trials), "--runs-dir", str(tmp_path / f"machine{i}"),
                                       "--seed", str(i)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    first = machine(1, 6)
    while not any(t.state.is_finished() for t in _trials_so_far(postgres_url)):
        assert first.poll() is None, first.communicate()[1]
        time.sleep(0.2)
    procs = [first, machine(2, 12)]
    outputs = [p.communicate(timeout=300) for p in procs]
    for p, (out, err) in zip(procs, outputs):
        assert p.returncode == 0, err
    study = optuna.load_study(study_name="shared", storage=postgres_url)
    trials = study.trials
    # Each stops once the study holds its --trials finished; a trial in flight in the other
    # process when that happens may add one more.
    assert 12 <= len(trials) <= 13
    assert sorted(t.number for t in trials) == list(range(len(trials)))
    assert all(t.state.is_finished() and t.state != optuna.trial.TrialState.FAIL for t in trials)
    assert {t.user_attrs["pid"] for t in trials} == {p.pid for p in procs}  # both took part
    # Each machine's study folder points at the shared database and sees every trial.
    for i in (1, 2):
        assert len(load_study(tmp_path / f"machine{i}" / "shared", postgres_url).trials) == len(trials)
    assert "shared" in dashboard_study_names(postgres_url)
    print(f"two processes, one PostgreSQL study: {len(trials)} trials for --trials 12")


def test_a_password_in_the_url_is_never_shown_or_stored(tmp_path, postgres_url):
    # The test server trusts local connections, so any password is accepted and ignored;
    # libpq would read a needed one from $PGPASSWORD or ~/.pgpass.
    secret = "s3cret-pw"
    url = postgres_url.replace("postgres@", f"postgres:{secret}@")
    cmd = [sys.executable, "-m", "nas", "search", "--dataset", "synthetic", "--space", "cnn",
           "--budget", "15000", "--limit-train", "128", "--epochs", "1", "--trials", "1",
           "--study", "secret", "--storage", url, "--runs-dir", str(tmp_path), "--no-progress"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert secret not in proc.stdout + proc.stderr and "postgres:***@" in proc.stdout
    assert secret not in (tmp_path / "secret" / "study.json").read_text()
    # A database server named by a study folder is opened only when the user names it too.
    pareto = subprocess.run([sys.executable, "-m", "nas", "pareto", str(tmp_path / "secret")],
                            capture_output=True, text=True, timeout=300)
    assert pareto.returncode == 2 and "names a database server as its storage" in pareto.stderr
    assert "add --storage 'postgresql://postgres@" in pareto.stderr and secret not in pareto.stderr
    pareto = subprocess.run([sys.executable, "-m", "nas", "pareto", str(tmp_path / "secret"),
                             "--storage", url], capture_output=True, text=True, timeout=300)
    assert pareto.returncode == 0, pareto.stderr
    assert secret not in pareto.stdout + pareto.stderr
    wrong = url.rsplit(":", 1)[0] + ":1/postgres"  # nothing listens on port 1
    bad = subprocess.run(cmd[:-5] + ["--storage", wrong, "--runs-dir", str(tmp_path / "x")],
                         capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and secret not in bad.stderr and "***" in bad.stderr
