"""A study folder, sidecar, model file, dataset or cache may come from someone else: what it
says never reaches outside it. Each case is planted for real and the command run as a user
would run it; the files it could have harmed are compared byte for byte afterwards."""

import hashlib
import json
import os
import re
import resource
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import optuna
import pytest
import torch
from PIL import Image

import hostile
from conftest import copy_study, writable_study
from nas import journal
from nas.storage import load_study
from nas.study_folder import weights_path
from nas.trials import completed_trials, pick_trial
from nas.arch import ArchSpec
from nas.budget import count_params


@pytest.fixture
def study(searched_synthetic, tmp_path):
    return copy_study(searched_synthetic("cnn", 3, 1)[0], tmp_path / "runs" / "syn")


@pytest.fixture
def keyfile(tmp_path):
    """Someone's file whose last line has no newline (a key, a JSON settings file)."""
    path = tmp_path / "keyfile"
    path.write_bytes(b'{"api_key": "do-not-lose-me"}')
    return path


def one_line(code, err, message):
    assert code == 2 and message in err and err.count("\n") == 1 and "Traceback" not in err, err


def plant_pointer(folder: Path, storage: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "study.json").write_text(json.dumps({"study_name": "x", "storage": storage}))
    return folder


def test_a_study_json_naming_a_file_outside_the_folder_touches_nothing(tmp_path, run, keyfile):
    before = keyfile.read_bytes()
    planted = plant_pointer(tmp_path / "planted", str(keyfile))
    for command in (["pareto", planted], ["export", planted, "--best"], ["dashboard", planted],
                    ["train", planted, "--best"], ["baseline", "mnist-gap-8k", planted],
                    ["compare", planted]):
        code, _, err = run(*command)
        one_line(code, err, "names a file outside the folder as its storage")
        assert "nas opens a storage outside the study folder only when you name it: add --storage" in err
    # The same file as the folder's journal.log, through a symlink out of the folder.
    linked = tmp_path / "linked"
    linked.mkdir()
    (linked / "journal.log").symlink_to(keyfile)
    plant_pointer(linked, "journal.log")
    one_line(*run("pareto", linked)[::2], "names a symlink out of the folder as its storage")
    code, _, err = run("search", "--dataset", "synthetic", "--runs-dir", tmp_path, "--study", "linked")
    one_line(code, err, "is a symlink out of the study folder")
    # Named by the user, or copied into the folder: it is still no journal, and is refused.
    code, _, err = run("pareto", planted, "--storage", keyfile)
    one_line(code, err, "is not an Optuna journal (it starts '{\"api_key\"")
    shutil.copy(keyfile, tmp_path / "copied.log")
    own = plant_pointer(tmp_path / "own", str(tmp_path / "copied.log"))
    shutil.move(tmp_path / "copied.log", own / "journal.log")
    (own / "study.json").write_text(json.dumps({"study_name": "x", "storage": "journal.log"}))
    for args in (["pareto", own], ["search", "--dataset", "synthetic", "--runs-dir", tmp_path, "--study", "own"]):
        one_line(*run(*args)[::2], "is not an Optuna journal")
        assert (own / "journal.log").read_bytes() == before
    assert keyfile.read_bytes() == before
    assert not (tmp_path / "keyfile.lock").exists()


def test_a_study_json_naming_a_database_opens_nothing_the_user_did_not_name(tmp_path, run):
    app = tmp_path / "app.db"
    with sqlite3.connect(app) as db:
        db.execute("create table users (name text)")
        db.execute("insert into users values ('alice')")
    before = app.read_bytes()
    planted = plant_pointer(tmp_path / "planted", f"sqlite:///{app}")
    one_line(*run("pareto", planted)[::2], "names a file outside the folder as its storage")
    # Named by the user, but not an Optuna database: read by SQLite read-only, no table added.
    code, _, err = run("pareto", planted, "--storage", f"sqlite:///{app}")
    one_line(code, err, "is not an Optuna database (no Optuna tables in it)")
    assert app.read_bytes() == before
    # A server is never contacted on a folder's word (this name does not even resolve).
    remote = plant_pointer(tmp_path / "remote", "postgresql://user@attacker.invalid/db")
    for command in ("pareto", "export", "dashboard"):
        code, _, err = run(command, remote, *(["--best"] if command == "export" else []))
        one_line(code, err, "names a database server as its storage ('postgresql://user@attacker.invalid/db')")


def test_a_stale_journal_lock_is_said_at_once_and_readers_take_none(study, run):
    lock = study / "journal.log.lock"
    lock.touch()
    hour_ago = time.time() - 3600
    os.utime(lock, (hour_ago, hour_ago))
    code, _, err = run("pareto", study)  # a reader takes no lock, so it does not wait
    assert code == 0 and lock.exists() and "lock" not in err, err
    code, _, err = run("search", "--dataset", "synthetic", "--space", "cnn", "--budget", 20_000,
                       "--trials", 3, "--runs-dir", study.parent, "--study", "syn", "--no-progress")
    assert code == 0, err
    said = re.search(rf"nas: removed {re.escape(str(lock))}, a lock (\d+) s old left by a "
                     rf"writer killed mid-append", err)
    assert said and int(said.group(1)) >= 3600, err  # an hour, plus however long the commands took
    assert not lock.exists()


def test_a_live_writers_lock_passes_unsaid_and_one_that_stays_is_said(tmp_path, capsys):
    log = tmp_path / "journal.log"
    log.write_bytes(b"")
    writer = journal.open_lock(str(log))  # Optuna's own lock, as a second worker holds it
    writer.acquire()
    released = threading.Timer(0.05, writer.release)
    released.start()
    journal.clear_stale_lock(Path(str(log) + ".lock"))  # opening the study meanwhile
    released.join()
    assert capsys.readouterr().err == ""
    writer.acquire()  # and one that is not released: a writer stuck or killed mid-append
    journal.clear_stale_lock(Path(str(log) + ".lock"))
    assert "journal.log.lock exists: another writer holds it" in capsys.readouterr().err
    writer.release()


def test_a_model_file_is_data_unless_the_user_trusts_its_code(tmp_path, run, monkeypatch):
    victim = tmp_path / "victim"
    victim.write_bytes(b"keep")
    evil = hostile.overwriter(tmp_path / "evil.pt", victim)
    code, _, err = run("count", evil, "--input", "1x16x16")
    one_line(code, err, "can only be counted by running its code")
    # A sidecar planted beside it, naming a spec and the file's own sha256: counted from the
    # spec, checked against the file's tensors read as data, and found not to match.
    spec = ArchSpec.from_string("c8k3-gap", 1, 16, 16, 4)
    (tmp_path / "evil.json").write_text(json.dumps({
        "arch_spec": spec.to_dict(), "sha256": hashlib.sha256(evil.read_bytes()).hexdigest(),
        "classes": ["a", "b", "c", "d"], "normalization": {"mean": [0.5], "std": [0.25]},
        "input_shape": [1, 16, 16], "params": count_params(spec)}))
    one_line(*run("count", evil)[::2], "does not hold the model its sidecar names (c8k3-gap)")
    assert victim.read_bytes() == b"keep"  # none of the file's code ran
    # Trusted: the code runs (and does what it says), in a child process with a time limit.
    assert run("count", evil, "--input", "1x16x16", "--trust-code")[0] == 0
    assert victim.read_bytes() == b"XXXX"
    monkeypatch.setenv("NAS_CODE_TIME_LIMIT", "3")
    endless = hostile.overwriter(tmp_path / "endless.pt", victim, endless=True)
    one_line(*run("count", endless, "--input", "1x16x16", "--trust-code")[::2],
             "its code ran for 3 s on one image without finishing and was stopped")


def test_a_teacher_is_a_study_trial_or_an_export_and_runs_no_code_unasked(study, run, tmp_path, monkeypatch):
    victim = tmp_path / "victim"
    victim.write_bytes(b"keep")
    evil = hostile.overwriter(tmp_path / "evil.pt", victim)
    code, _, err = run("train", study, "--best", "--epochs", 1, "--teacher", evil)
    one_line(code, err, "if you trust it, add --trust-code")
    assert victim.read_bytes() == b"keep"
    monkeypatch.setenv("NAS_CODE_TIME_LIMIT", "3")
    endless = hostile.overwriter(tmp_path / "endless.pt", victim, endless=True)
    one_line(*run("train", study, "--best", "--epochs", 1, "--teacher", endless, "--trust-code")[::2],
             "its code ran for 3 s on 4 images without finishing and was stopped")
    # A trial of a study as the teacher: built from its spec, weights as tensors only.
    code, out, err = run("train", study, "--best", "--epochs", 1, "--teacher", study, "--alpha", 1.0)
    assert code == 0, err
    best = pick_trial(load_study(study), None).number
    assert f"distilling from trial {best} of {study}" in out and f"weights/trial-{best}.pt" in out


def test_sizes_in_a_sidecar_are_checked_before_anything_is_allocated(study, run, tmp_path):
    out = tmp_path / "cnt.pt"
    assert run("export", study, "--best", "--out", out)[0] == 0
    sidecar = json.loads(out.with_suffix(".json").read_text())
    out.with_suffix(".json").write_text('{"input_shape": [1, 30000, 30000]}')  # the 34 bytes
    one_line(*run("count", out)[::2], "is not a sidecar nas export wrote")
    big = dict(sidecar, input_shape=[1, 30000, 30000],
               arch_spec=dict(sidecar["arch_spec"], height=30000, width=30000))
    out.with_suffix(".json").write_text(json.dumps(big))
    one_line(*run("count", out)[::2], "is not CxHxW with C from 1 to 64 and H, W from 1 to 4096")


def test_files_nas_did_not_write_are_not_replaced(study, run, tmp_path):
    deploy = tmp_path / "deploy"
    deploy.mkdir()
    (deploy / "app.json").write_text('{"port": 8080}\n')
    (deploy / "report.json").write_text('{"owner": "ops"}\n')
    code, _, err = run("export", study, "--trial", 0, "--out", deploy / "app.pt")
    one_line(code, err, "app.json exists and is not a sidecar nas export wrote")
    assert not (deploy / "app.pt").exists()
    code, _, err = run("compare", study, "--out", deploy / "report.png")
    one_line(code, err, "report.json exists and is not a table nas compare wrote")
    assert not (deploy / "report.png").exists()
    assert (deploy / "app.json").read_text() == '{"port": 8080}\n'
    assert (deploy / "report.json").read_text() == '{"owner": "ops"}\n'
    # Its own files it replaces; others with --force.
    assert run("export", study, "--trial", 0, "--out", deploy / "app.pt", "--force")[0] == 0
    assert run("export", study, "--trial", 1, "--out", deploy / "app.pt")[0] == 0
    assert json.loads((deploy / "app.json").read_text())["trial"] == 1
    assert run("compare", study, "--out", deploy / "report.png", "--force")[0] == 0
    assert run("compare", study, "--out", deploy / "report.png")[0] == 0


def test_non_regular_files_and_pillow_bombs_in_an_image_folder_are_refused(tmp_path):
    tree = tmp_path / "pets"
    for cls in ("cat", "dog"):
        (tree / "train" / cls).mkdir(parents=True)
        for i in range(3):
            Image.new("L", (8, 8), 40 * i).save(tree / "train" / cls / f"{i}.png")
    os.mkfifo(tree / "train" / "cat" / "pipe.png")  # reading it would wait for a writer forever
    cmd = [sys.executable, "-m", "nas", "search", "--dataset", f"folder:{tree}", "--runs-dir",
           str(tmp_path / "runs")]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    one_line(proc.returncode, proc.stderr, "pipe.png is not a regular file (a named pipe")
    (tree / "train" / "cat" / "pipe.png").unlink()
    # 12000 x 12000 = 144 M pixels: over Pillow's 89 M limit, under twice it (where Pillow
    # itself raises); Pillow checks the size as the file opens, before any pixel is read.
    hostile.png_header(tree / "train" / "dog" / "huge.png", 12000, 12000)
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    one_line(proc.returncode, proc.stderr, "huge.png is too large to decode safely")


def _limited(size: int):
    """A child process's files limited to ``size`` bytes: a write past it fails as on a full
    disk (EFBIG, with SIGXFSZ ignored as a shell running it would have to)."""
    def limit():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))
    return limit


def test_a_full_disk_is_one_line_and_leaves_no_temporary(study, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    export = [sys.executable, "-m", "nas", "export", str(study), "--best", "--out", str(out / "m.pt")]
    proc = subprocess.run(export, capture_output=True, text=True, preexec_fn=_limited(20_000))
    one_line(proc.returncode, proc.stderr, "m.pt: File too large")
    assert "frame #" not in proc.stderr and list(out.iterdir()) == []
    search = [sys.executable, "-m", "nas", "search", "--dataset", "synthetic", "--space", "cnn",
              "--budget", "20000", "--trials", "2", "--epochs", "1", "--runs-dir", str(tmp_path / "runs"),
              "--study", "full", "--no-progress"]
    proc = subprocess.run(search, capture_output=True, text=True, preexec_fn=_limited(40_000))
    assert proc.returncode == 2 and "File too large" in proc.stderr, proc.stderr
    assert "internal error" not in proc.stderr and "Traceback" not in proc.stderr
    assert not [p for p in (tmp_path / "runs").rglob("*") if ".tmp" in p.name]


def _add_planted_trial(study_dir: Path, **attrs) -> int:
    """A completed trial written into the study's real journal, as an edited file would hold."""
    study = writable_study(study_dir)
    base = completed_trials(study)[0]
    trial = optuna.trial.create_trial(value=0.99, params=base.params, distributions=base.distributions,
                                      user_attrs={**base.user_attrs, **attrs})
    study.add_trial(trial)
    return len(study.trials) - 1


def test_damaged_records_are_one_line_naming_what_was_wrong(study, run, tmp_path):
    (study / "baselines.json").write_text("[{]")
    one_line(*run("pareto", study)[::2], "baselines.json is damaged")
    (study / "baselines.json").write_text('{"name": "x"}')
    one_line(*run("pareto", study)[::2], "expected a list of baseline rows, got dict")
    (study / "baselines.json").write_text('[{"name": "x", "params": "many"}]')
    one_line(*run("pareto", study)[::2], "baselines.json, row 1: model is missing or of the wrong type")
    (study / "baselines.json").unlink()
    # --weights with a figures file that is not nas train's.
    weights = tmp_path / "w.pt"
    shutil.copy(study / "weights" / "trial-0.pt", weights)
    weights.with_suffix(".json").write_text("[]")
    one_line(*run("export", study, "--trial", 0, "--weights", weights, "--out", tmp_path / "m.pt")[::2],
             "w.json (beside --weights) is not the figures nas train writes")
    # A million channels in a planted trial: counted from the spec, never built.
    arch = ArchSpec.from_dict(completed_trials(load_study(study))[0].user_attrs["arch"]).to_dict()
    arch["blocks"][0]["out"] = 10 ** 6
    huge = _add_planted_trial(study, arch=arch, params=count_params(ArchSpec.from_dict(arch)))
    shutil.copy(study / "weights" / "trial-0.pt", weights_path(study, huge))
    one_line(*run("export", study, "--trial", huge)[::2], "is over the study's budget of 20,000")
    one_line(*run("train", study, "--trial", huge, "--epochs", 1)[::2], "is over the study's budget")
    # A trial whose params attribute is a string.
    _add_planted_trial(study, params="12k")
    one_line(*run("pareto", study)[::2], "user attribute 'params' is '12k' (str), expected an integer")


def test_odd_dataset_files_are_one_line_naming_the_file(tmp_path, run):
    csv = tmp_path / "fer.csv"
    csv.write_text("emotion,pixels,Usage\n0,\"" + "1 " * 5_000_000 + "\",Training\n")
    one_line(*run("search", "--dataset", f"fer2013:{csv}", "--runs-dir", tmp_path / "r")[::2],
             "fer.csv, line 2: not a FER2013 CSV row (field larger than field limit")
    bomb = hostile.npz_declaring(tmp_path / "bomb.npz", (100_000, 1000, 1000))  # 93 GiB
    assert bomb.stat().st_size < 3000
    one_line(*run("search", "--dataset", f"arrays:{bomb}", "--runs-dir", tmp_path / "r")[::2],
             "bomb.npz[x_train]: declares a uint8 array of shape (100000, 1000, 1000) "
             "(100,000,000,000 bytes) but holds 2,000 bytes")


def test_a_shared_cache_folder_is_not_trusted(tmp_path, monkeypatch, capsys):
    from nas.data import load

    tree = tmp_path / "pets"
    for cls in ("cat", "dog"):
        (tree / "train" / cls).mkdir(parents=True)
        for i in range(3):
            Image.new("L", (8, 8), 40 * i).save(tree / "train" / cls / f"{i}.png")
    cache = tmp_path / "shared-cache"
    monkeypatch.setenv("NAS_CACHE_DIR", str(cache))
    load(f"folder:{tree}")
    [entry] = cache.glob("*.npz")
    assert cache.stat().st_mode & 0o777 == 0o700  # created private
    # Someone rewrites the entry under its (predictable) name: other classes, other images.
    with np.load(entry) as npz:
        arrays = dict(npz)
    arrays["classes"] = np.array(["planted-a", "planted-b"])
    arrays["x_train"] = np.full_like(arrays["x_train"], 255)
    with open(entry, "wb") as f:
        np.savez(f, **arrays)
    for share in (lambda: cache.chmod(0o777),  # a folder others can write in
                  lambda: (cache.chmod(0o700), os.chown(entry, 65534, 65534))):  # an entry not ours
        share()
        capsys.readouterr()
        data = load(f"folder:{tree}")
        assert data.info.classes == ("cat", "dog") and int(data.train_x.max()) < 255
        err = capsys.readouterr().err
        if os.stat(cache).st_mode & 0o022:
            assert "not using the dataset cache" in err and "other users can write in it" in err
