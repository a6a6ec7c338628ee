"""Faults made to happen for real: a worker killed with SIGKILL mid-trial, Ctrl-C, out of
memory, concurrent workers. No finished trial is ever lost, and the search goes on."""

import hashlib
import json
import os
import signal
import subprocess
import sys
import time

import optuna
import pytest
import torch

from conftest import copy_study, without_progress, writable_study
from nas.storage import load_study
from nas.study_folder import weights_path
from nas.trials import completed_trials


def _wait_for_running_trial(study_dir, proc, timeout=120, storage=None):
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        time.sleep(0.5)
        running = [t for t in load_study(study_dir, storage).get_trials(
            states=(optuna.trial.TrialState.RUNNING,)) if "arch" in t.user_attrs]
        if running:
            return running[0]
    raise AssertionError("the long trial never started")


@pytest.mark.parametrize("storage", ["journal", "sqlite"])
def test_kill_9_mid_trial_then_rerun_retries_it_and_keeps_finished_trials(tmp_path, storage):
    runs = tmp_path / "runs"
    cmd = [sys.executable, "-m", "nas", "search", "--dataset", "synthetic", "--space", "cnn",
           "--budget", "15000", "--limit-train", "300", "--runs-dir", str(runs), "--study",
           "kill", "--pruner", "none", "--no-progress"]
    url = f"sqlite:///{tmp_path / 'kill.db'}" if storage == "sqlite" else None
    if url:  # an RDB storage (SQLAlchemy), as PostgreSQL would be; named again to read it
        cmd += ["--storage", url]
    # One quick trial finishes first, then a long one is killed in the middle.
    assert subprocess.run(cmd + ["--trials", "1", "--epochs", "1"], capture_output=True).returncode == 0
    proc = subprocess.Popen(cmd + ["--trials", "2", "--epochs", "400"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    victim = _wait_for_running_trial(runs / "kill", proc, storage=url)
    time.sleep(1.0)  # inside its 400 epochs
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    study = load_study(runs / "kill", url)
    first = study.trials[0]
    assert first.state == optuna.trial.TrialState.COMPLETE
    assert study.trials[victim.number].state == optuna.trial.TrialState.RUNNING  # left stale

    start = time.time()
    done = subprocess.run(cmd + ["--trials", "2", "--epochs", "1"], capture_output=True, text=True)
    resume_seconds = time.time() - start
    assert done.returncode == 0, done.stderr
    assert f"trial {victim.number} was interrupted" in done.stdout
    study = load_study(runs / "kill", url)
    killed = study.trials[victim.number]
    assert killed.state == optuna.trial.TrialState.FAIL
    assert "interrupted: its worker (pid" in killed.user_attrs["fail_reason"]
    retries = [t for t in study.trials if t.user_attrs.get("retry_of") == victim.number]
    assert len(retries) == 1 and retries[0].params == killed.params
    assert retries[0].state == optuna.trial.TrialState.COMPLETE
    # The finished trial is intact, and --trials 2 counts finished work only.
    assert study.trials[0].value == first.value and study.trials[0].params == first.params
    assert sum(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials) == 2
    assert study.user_attrs["trial_counts"]["interrupted"] == 1
    print(f"resume took {resume_seconds:.1f} s")
    # A second re-run finds nothing to recover and nothing to do.
    again = subprocess.run(cmd + ["--trials", "2", "--epochs", "1"], capture_output=True, text=True)
    assert again.returncode == 0 and "interrupted" not in again.stdout.split("trials in study")[0]


def test_same_seed_on_cpu_proposes_the_same_architectures_with_the_same_accuracies(tmp_path, run):
    results = []
    for name in ("a", "b"):
        code, _, err = run("search", "--dataset", "synthetic", "--space", "mobilenet", "--budget",
                           "20000", "--trials", 10, "--epochs", 1, "--limit-train", 256,
                           "--seed", 7, "--runs-dir", tmp_path / name, "--study", "det",
                           "--device", "cpu", "--no-progress")
        assert code == 0, err
        trials = load_study(tmp_path / name / "det").trials
        results.append([(t.user_attrs.get("arch_str"), t.state, t.value) for t in trials])
    assert len(results[0]) == 10
    for (arch_a, state_a, value_a), (arch_b, state_b, value_b) in zip(*results):
        assert arch_a == arch_b and state_a == state_b
        assert (value_a is None and value_b is None) or abs(value_a - value_b) <= 1e-6


# glibc, as the heap figure sees it, unmoved by its own choices: one arena (not one per
# thread, each reserving 64 MiB), and large blocks always mapped and unmapped on free (not
# kept in the heap once the adaptive threshold has grown). A leak still shows in full.
STEADY_HEAP = {"MALLOC_ARENA_MAX": "1", "MALLOC_MMAP_THRESHOLD_": str(128 * 1024)}


def test_out_of_memory_trials_fail_with_the_reason_free_their_memory_and_the_search_goes_on(tmp_path):
    # A real out-of-memory: a 0.15 GiB cap on the worker's heap (RLIMIT_DATA, in a child
    # process) against batches of 1,500 images; wide nets need more, narrow ones fit.
    runs = tmp_path / "runs"
    proc = subprocess.run(
        [sys.executable, "-m", "nas", "search", "--dataset", "synthetic", "--space", "cnn",
         "--budget", "15000", "--trials", "8", "--epochs", "1", "--batch-size", "1500",
         "--memory-limit", "0.15", "--runs-dir", str(runs), "--study", "oom", "--no-progress"],
        capture_output=True, text=True, env={**os.environ, **STEADY_HEAP})
    assert proc.returncode == 0, proc.stderr
    trials = load_study(runs / "oom").trials
    assert len(trials) == 8
    oom = [t.number for t in trials if t.state == optuna.trial.TrialState.FAIL]
    assert oom and all(trials[n].user_attrs["fail_reason"].startswith("out of memory: ")
                       for n in oom)
    # A trial after an out-of-memory one still trains: the failed one's memory was freed.
    assert any(t.state == optuna.trial.TrialState.COMPLETE and t.number > oom[0] for t in trials)
    heap = [t.user_attrs["heap_after"] for t in trials]
    print(f"{len(oom)} of 8 trials out of memory; heap after each trial (MiB): "
          f"{[round(h / 2**20) for h in heap]}")
    # No growth once the allocator has warmed up: a leak would add to every out-of-memory
    # trial's heap. (STEADY_HEAP keeps glibc from moving the figure by tens of MiB itself.)
    assert heap[-1] - max(heap[:4]) < 32 * 2**20
    assert (runs / "oom" / "pareto.json").is_file()  # the results are written without the cap


# SIGTERM is what kill, docker stop and a scheduler's time limit send: handled like Ctrl-C.
# One process and Ctrl-C; workers and SIGTERM (in the search, both signals take one path).
@pytest.mark.parametrize("jobs,signum", [(1, signal.SIGINT), (2, signal.SIGTERM)])
def test_ctrl_c_abandons_the_running_trials_writes_results_exits_130_and_rerun_resumes(
        tmp_path, jobs, signum):
    runs = tmp_path / "runs"
    cmd = [sys.executable, "-m", "nas", "search", "--dataset", "synthetic", "--space", "cnn",
           "--budget", "15000", "--limit-train", "300", "--runs-dir", str(runs), "--study", "sig",
           "--pruner", "none", "--no-progress", "--jobs", str(jobs)]
    assert subprocess.run(cmd + ["--trials", "1", "--epochs", "1"], capture_output=True).returncode == 0
    first = load_study(runs / "sig").trials[0]
    (runs / "sig" / "pareto.json").unlink()
    # Its own session, so SIGINT goes to the whole group, workers too, as Ctrl-C in a terminal.
    # SIGINT restored to its default, as a terminal has it: a suite started in the background
    # of a non-interactive shell hands its children SIGINT ignored, and the search then
    # rightly ignores Ctrl-C (see the README).
    proc = subprocess.Popen(cmd + ["--trials", "3", "--epochs", "400"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    _wait_for_running_trial(runs / "sig", proc)
    time.sleep(1.0)
    os.killpg(proc.pid, signum)
    out, err = proc.communicate(timeout=60)
    name = {signal.SIGINT: "Ctrl-C (SIGINT)", signal.SIGTERM: "SIGTERM"}[signum]
    assert proc.returncode == 128 + signum, err  # 130, 143
    assert without_progress(err) == [f"nas: interrupted by {name}; completed trials are kept "
                                     f"in {runs / 'sig'} (re-run the same command to resume)"]
    assert [r["trial"] for r in json.loads((runs / "sig" / "pareto.json").read_text())] == [0]
    study = load_study(runs / "sig")
    stopped = [t for t in study.trials if t.state == optuna.trial.TrialState.FAIL]
    assert len(stopped) == jobs and not any(t.state == optuna.trial.TrialState.RUNNING
                                            for t in study.trials)
    assert all(t.user_attrs["fail_reason"].startswith(f"interrupted: {name} ") for t in stopped)

    again = subprocess.run(cmd + ["--trials", "3", "--epochs", "1"], capture_output=True, text=True)
    assert again.returncode == 0, again.stderr
    study = load_study(runs / "sig")
    for t in stopped:  # each abandoned trial's parameters ran again, to the end
        retry = [r for r in study.trials if r.user_attrs.get("retry_of") == t.number]
        assert len(retry) == 1 and retry[0].params == t.params
        assert retry[0].state == optuna.trial.TrialState.COMPLETE
    assert sum(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials) == 3
    assert study.trials[0].value == first.value and study.trials[0].params == first.params


@pytest.mark.parametrize("storage", ["journal", "sqlite"])
def test_four_workers_fill_one_study_with_100_trials_none_lost_none_twice(tmp_path, storage):
    runs = tmp_path / "runs"
    cmd = [sys.executable, "-m", "nas", "search", "--dataset", "synthetic", "--space", "cnn",
           "--budget", "15000", "--limit-train", "64", "--epochs", "1", "--trials", "100",
           "--jobs", "4", "--pruner", "none", "--runs-dir", str(runs), "--study", "many",
           "--no-progress"]
    url = f"sqlite:///{tmp_path / 'many.db'}" if storage == "sqlite" else None
    if url:  # SQLite is where concurrent writers meet "database is locked"
        cmd += ["--storage", url]
    start = time.time()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    seconds = time.time() - start
    assert proc.returncode == 0, proc.stderr
    assert "locked" not in (proc.stdout + proc.stderr).lower()
    trials = load_study(runs / "many", url).trials
    assert sorted(t.number for t in trials) == list(range(100))  # unique and contiguous
    assert all(t.state in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
               for t in trials)  # finished: trained, or infeasible (never built); none failed
    assert len({t.user_attrs["pid"] for t in trials}) == 4  # all four workers took part
    print(f"4 workers, 100 trials on {storage}: {seconds:.1f} s")


def test_a_torn_journal_tail_is_cut_back_and_the_study_goes_on(searched_synthetic, tmp_path, run):
    """A kill or a full disk mid-append leaves a last line with no newline; Optuna's next
    append would glue a record to it and make the whole journal unreadable."""
    study_dir = copy_study(searched_synthetic("cnn", 3, 1)[0], tmp_path / "runs" / "syn")
    journal = study_dir / "journal.log"
    whole = journal.read_bytes()
    os.truncate(journal, len(whole) - 40)  # the repro: the last record torn
    kept = whole[:whole.rstrip(b"\n").rfind(b"\n") + 1]
    code, out, err = run("search", "--dataset", "synthetic", "--space", "cnn", "--budget", 20_000,
                         "--trials", 4, "--epochs", 1, "--runs-dir", tmp_path / "runs",
                         "--study", "syn", "--no-progress")
    assert code == 0, err
    assert err.count("cut a torn last record (") == 1
    records = kept.count(b"\n")
    assert f"the {records} records before it are kept" in err
    assert journal.read_bytes().startswith(kept)  # nothing before the tear was touched
    study = load_study(study_dir)
    assert len(study.trials) == 4 and len(completed_trials(study)) >= 3
    code, _, err = run("pareto", study_dir)
    assert code == 0 and "torn" not in err


def test_a_damaged_journal_line_is_named_and_the_file_left_as_it_is(searched_synthetic, tmp_path, run):
    study_dir = copy_study(searched_synthetic("cnn", 3, 1)[0], tmp_path / "runs" / "syn")
    journal = study_dir / "journal.log"
    lines = journal.read_bytes().split(b"\n")
    lines[6] = b'{"op_code": 5, "trial_id"' + b"\x00" * 20  # not a record, newline after it
    journal.write_bytes(b"\n".join(lines))
    damaged = journal.read_bytes()
    for args in (["pareto", study_dir], ["export", study_dir, "--best"],
                 ["search", "--dataset", "synthetic", "--space", "cnn", "--budget", 20_000,
                  "--trials", 4, "--runs-dir", tmp_path / "runs", "--study", "syn"]):
        code, _, err = run(*args)
        assert code == 2 and err.count("\n") == 1, (args, err)
        assert "journal.log, line 7: not an Optuna journal record" in err
        assert "the 6 records before it are intact: keep them with `head -n 6 " in err
        assert journal.read_bytes() == damaged


# Runs the CLI and SIGKILLs it at a chosen file operation: the audit event ("open" for a
# write, "os.rename" for a rename) of the first path that matches the regex TARGET. A real kill, at the
# moment a write has begun (an empty file) or a finished file is about to take its name.
KILL_AT = """
import os, re, signal, sys
event, target, signum = sys.argv[1], sys.argv[2], getattr(signal, sys.argv[3])
sent = []
def hook(name, args):
    if (not sent and name == event and re.search(target, str(args[0]))
            and (event != "open" or set(str(args[1])) & set("wa+x"))):
        sent.append(signum)
        os.kill(os.getpid(), signum)
sys.addaudithook(hook)
from nas.cli import main
sys.exit(main(sys.argv[4:]))
"""


def _killed_at(event, target, *args, signum="SIGKILL"):
    proc = subprocess.run([sys.executable, "-c", KILL_AT, event, target, signum, *map(str, args)],
                          capture_output=True, text=True)
    return proc.returncode


def test_a_kill_while_the_front_is_written_leaves_every_file_whole(searched_synthetic, tmp_path, run):
    study_dir = copy_study(searched_synthetic("cnn", 3, 1)[0], tmp_path / "runs" / "syn")
    assert run("pareto", study_dir)[0] == 0
    names = ("test_acc.json", "pareto.csv", "pareto.json", "pareto.png")
    before = {name: (study_dir / name).read_bytes() for name in names}
    for target in (r"test_acc", r"pareto.*\.csv$", r"pareto.*\.json$", r"pareto.*\.png$"):
        assert _killed_at("open", target, "pareto", study_dir) == -signal.SIGKILL, target
        for name in names:  # the old file, whole: the kill hit a temporary
            assert (study_dir / name).read_bytes() == before[name], (target, name)
    code, out, err = run("pareto", study_dir)
    assert code == 0, err


def test_a_damaged_test_accuracy_cache_is_measured_again(searched_synthetic, tmp_path, run):
    study_dir = copy_study(searched_synthetic("cnn", 3, 1)[0], tmp_path / "runs" / "syn")
    assert run("pareto", study_dir)[0] == 0
    good = json.loads((study_dir / "pareto.json").read_text())
    for damage in (b"", b"{\"0\": 0.9", b"[1, 2]", b"{\"0:abc\": \"x\"}"):
        (study_dir / "test_acc.json").write_bytes(damage)
        code, _, err = run("pareto", study_dir)
        assert code == 0, err
        assert json.loads((study_dir / "pareto.json").read_text()) == good


def test_test_accuracy_is_never_taken_from_other_weights(searched_synthetic, tmp_path, run):
    """test_acc.json is keyed by trial number and the weights' hash: a trial number whose
    weights changed (a copied folder searched again) is measured again, not looked up."""
    study_dir = copy_study(searched_synthetic("cnn", 3, 1)[0], tmp_path / "runs" / "syn")
    assert run("pareto", study_dir)[0] == 0
    front = json.loads((study_dir / "pareto.json").read_text())
    cache = json.loads((study_dir / "test_acc.json").read_text())
    assert {key.split(":")[0] for key in cache} == {str(r["trial"]) for r in front}
    # Plant a wrong accuracy under each key, then give one front trial other weights.
    (study_dir / "test_acc.json").write_text(json.dumps({key: 0.0123 for key in cache}))
    victim = front[-1]["trial"]
    weights = weights_path(study_dir, victim)
    state = torch.load(weights, weights_only=True)
    torch.save({k: v * 0 if v.is_floating_point() else v for k, v in state.items()}, weights)
    assert run("pareto", study_dir)[0] == 0
    rows = {r["trial"]: r["test_acc"] for r in json.loads((study_dir / "pareto.json").read_text())}
    assert rows[victim] != 0.0123  # measured on its new weights
    assert all(acc == 0.0123 for trial, acc in rows.items() if trial != victim)  # the rest looked up


def test_export_replaces_a_good_model_only_with_a_verified_pair(searched_synthetic, tmp_path, run):
    study_dir = copy_study(searched_synthetic("cnn", 3, 1)[0], tmp_path / "runs" / "syn")
    trials = [t.number for t in completed_trials(load_study(study_dir))]
    out = tmp_path / "model.pt"
    assert run("export", study_dir, "--trial", trials[0], "--out", out)[0] == 0
    pair = (out.read_bytes(), out.with_suffix(".json").read_bytes())
    assert json.loads(pair[1])["sha256"] == hashlib.sha256(pair[0]).hexdigest()
    other = ["export", study_dir, "--trial", trials[1], "--out", out]
    # Killed as the sidecar is being written, or as the checked model is about to take its name.
    for event, target in (("open", r"\.model\."), ("os.rename", r"\.model\.")):
        assert _killed_at(event, target, *other) == -signal.SIGKILL
        assert (out.read_bytes(), out.with_suffix(".json").read_bytes()) == pair, (event, target)
    # A failed check (a study whose budget is now below the trial) leaves both as they were.
    assert run("export", study_dir, "--trial", trials[1], "--out", out)[0] == 0
    pair = (out.read_bytes(), out.with_suffix(".json").read_bytes())
    study = writable_study(study_dir)
    config = dict(study.user_attrs["config"], budget=1)
    study.set_user_attr("config", config)
    left_by_kills = set(tmp_path.iterdir())  # a SIGKILL leaves its hidden temporary behind
    code, _, err = run("export", study_dir, "--trial", trials[0], "--out", out)
    assert code == 2 and "over the study's budget" in err
    assert (out.read_bytes(), out.with_suffix(".json").read_bytes()) == pair
    assert set(tmp_path.iterdir()) == left_by_kills  # a failure cleans up after itself
    # Killed between the two renames: the new model beside the old sidecar, which says so.
    study.set_user_attr("config", dict(config, budget=20_000))
    assert _killed_at("os.rename", r"\.tmp\.json$", "export", study_dir, "--trial", trials[0],
                      "--out", out) == -signal.SIGKILL
    assert out.read_bytes() != pair[0] and out.with_suffix(".json").read_bytes() == pair[1]
    code, _, err = run("count", out)
    assert code == 2 and "belongs to another model file" in err


def test_a_dead_worker_not_yet_reaped_counts_as_gone():
    """A worker killed with its parent stays a zombie until init reaps it (late, in some
    containers and VMs); recovery must see it as gone, or its trial stays 'running'."""
    from nas.search.recovery import _alive as recovery_sees_alive

    child = subprocess.Popen([sys.executable, "-c", "pass"])
    while not _is_zombie(child.pid):  # exited, and not reaped: we do not wait() yet
        time.sleep(0.05)
    try:
        assert not recovery_sees_alive(child.pid)
        assert recovery_sees_alive(os.getppid())  # a live process still counts as alive
    finally:
        child.wait()


def _is_zombie(pid: int) -> bool:
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0] == "Z"


def _alive(pid: int) -> bool:
    """Running, and not a zombie waiting for its reaper."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_workers_end_when_the_search_is_killed_9(tmp_path):
    """kill -9 of a --jobs search cannot stop its workers itself; they must not go on
    filling the study with parent 1. They end within a second or so; the next run marks
    their trials interrupted."""
    runs = tmp_path / "runs"
    cmd = [sys.executable, "-m", "nas", "search", "--dataset", "synthetic", "--space", "cnn",
           "--budget", "15000", "--limit-train", "300", "--runs-dir", str(runs), "--study", "w",
           "--pruner", "none", "--no-progress", "--jobs", "2"]
    proc = subprocess.Popen(cmd + ["--trials", "2", "--epochs", "400"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 180
    workers = set()
    while time.time() < deadline and len(workers) < 2:
        time.sleep(0.5)
        if (runs / "w" / "study.json").is_file():
            workers = {t.user_attrs["pid"] for t in load_study(runs / "w").trials
                       if t.state == optuna.trial.TrialState.RUNNING and "pid" in t.user_attrs}
    assert len(workers) == 2 and proc.pid not in workers, "the workers never started"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    killed = time.time()
    while time.time() - killed < 20 and any(_alive(pid) for pid in workers):
        time.sleep(0.1)
    gone = time.time() - killed
    assert not any(_alive(pid) for pid in workers), "workers outlived their search"
    print(f"workers ended {gone:.1f} s after the search was killed")
    done = subprocess.run(cmd + ["--trials", "2", "--epochs", "1"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("was interrupted") == 2


@pytest.mark.parametrize("signum, target, code", [("SIGTERM", r"test_acc", 143),
                                                  ("SIGINT", r"pareto.*\.png$", 130)])
def test_a_stop_signal_while_the_front_is_written_still_writes_all_of_it(tmp_path, signum, target, code):
    """The signal arrives as the front's files are being written (sent by the process to
    itself as the file is opened): they are all written, then the search stops as usual."""
    runs = tmp_path / "runs"
    rc = _killed_at("open", target, "search", "--dataset", "synthetic", "--space", "cnn",
                    "--budget", 15_000, "--limit-train", 200, "--trials", 1, "--epochs", 1,
                    "--runs-dir", runs, "--study", "s", "--no-progress", signum=signum)
    assert rc == code
    front = json.loads((runs / "s" / "pareto.json").read_text())
    assert front and all(r["test_acc"] is not None for r in front)
    assert (runs / "s" / "pareto.csv").read_text().count("\n") == len(front) + 1
    assert (runs / "s" / "pareto.png").read_bytes().startswith(b"\x89PNG")


@pytest.mark.parametrize("gib", ["0.05"])  # the limit that broke; 0.001 fails every trial the same way
def test_a_tiny_memory_limit_fails_trials_as_out_of_memory_and_nothing_else(tmp_path, gib):
    """At limits this small an allocation inside PyTorch's lazy first-use imports used to
    fail: a half-initialised module broke every later trial, or the process segfaulted."""
    runs = tmp_path / "runs"
    proc = subprocess.run([sys.executable, "-m", "nas", "search", "--dataset", "synthetic",
                           "--budget", "5k", "--epochs", "1", "--trials", "4", "--memory-limit", gib,
                           "--runs-dir", str(runs), "--study", "m", "--no-progress"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    trials = load_study(runs / "m").trials
    assert len(trials) == 4 and all(t.state.is_finished() for t in trials)
    for t in trials:
        if t.state == optuna.trial.TrialState.FAIL:
            assert t.user_attrs["fail_reason"].startswith("out of memory: "), t.user_attrs["fail_reason"]
