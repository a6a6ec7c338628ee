"""Bad input: one clear line on stderr, exit code 2, no traceback, nothing written."""

import subprocess
import sys

import pytest


def _cases(tmp):
    bad_toml = tmp / "bad.toml"
    bad_toml.write_text("budget = [unclosed\n")
    unknown_key = tmp / "unknown.toml"
    unknown_key.write_text('space = "cnn"\nbudjet = 50000\n')
    negative = tmp / "negative.toml"
    negative.write_text('space = "cnn"\nepochs = -3\n')
    absurd = tmp / "absurd.toml"
    absurd.write_text('budget = 1_000_000_000_000\n')
    typed = []  # each key checked against its type (TOML "no" is a string, not false)
    for i, (line, message) in enumerate([
            ("dataset = 5", "dataset must be a string, got 5 (int)"),
            ('space = ["cnn"]', "space must be a string, got ['cnn'] (list)"),
            ("runs_dir = 5", "runs-dir must be a string, got 5 (int)"),
            ('fill = "0.5"', "fill must be a number, got '0.5' (str)"),
            ('cuda_graph = "no"', "cuda-graph must be true or false, got 'no' (str)"),
            ('grayscale = "yes"', "grayscale must be true or false, got 'yes' (str)"),
            ('download = "no"', "download must be true or false, got 'no' (str)"),
            ("budget = true", "budget must be an integer, got True (bool)"),
            ("budget = 1e12", "budget must be an integer, got 1000000000000.0 (float)")]):
        (tmp / f"typed{i}.toml").write_text(line + "\n")
        typed.append((["search", "--config", tmp / f"typed{i}.toml"], message))
    syn = ["search", "--dataset", "synthetic"]  # default runs dir: ./runs
    return typed + [
        (syn + ["--space", "resnet"], "unknown search space 'resnet'; valid: cnn, densenet, mobilenet"),
        (["search", "--dataset", "imagenet"], "unknown dataset 'imagenet'; valid: mnist"),
        (syn + ["--budget", "0"], "--budget must be an integer from 1 to 1,000,000,000, got 0"),
        (syn + ["--budget", "-5"], "--budget must be an integer from 1 to 1,000,000,000, got -5"),
        (syn + ["--budget", "50000000000"], "--budget must be an integer from 1 to 1,000,000,000"),
        (syn + ["--epochs", "1000000"], "--epochs must be an integer from 1 to 10,000, got 1000000"),
        (syn + ["--batch-size", "-128"], "--batch-size must be an integer from 1 to"),
        (syn + ["--seed", "-1"], "--seed must be an integer from 0 to 2,147,483,647, got -1"),
        (syn + ["--image-size", "100000"], "--image-size must be an integer from 4 to 4,096"),
        (syn + ["--lr", "-0.1"], "--lr must be a positive number, got -0.1"),
        (syn + ["--lr", "inf"], "--lr must be a positive number, got inf"),
        (["search", "--config", negative], "--epochs must be an integer from 1 to 10,000, got -3"),
        (["search", "--config", absurd], "--budget must be an integer from 1 to 1,000,000,000, "
                                         "got 1000000000000"),
        (syn + ["--study", "a/b"], "bad study name 'a/b'"),
        (syn + ["--study", "abc\n"], "bad study name 'abc\\n'"),  # no folder named with a newline
        (syn + ["--study", ".."], "bad study name '..'"),
        (syn + ["--budget", "abc"], "not an integer: 'abc'"),
        (syn + ["--budget", "100"], "--budget 100 is below the smallest 'mobilenet' model"),
        (syn + ["--space", "cnn", "--budget", "100"], "below the smallest 'cnn' model"),
        (syn + ["--space", "mobilenet,cnn", "--budget", "600"],
         "below the smallest 'cnn' model for synthetic"),
        (syn + ["--time", "2m", "--trial-time", "100s"],
         "--trial-time 100s is longer than the search's share of --time 120s (60s)"),
        (syn + ["--epochs", "1", "--trial-time", "100s"], "--trial-time 100s needs --time"),
        (syn + ["--space", "cnn,resnet"], "unknown search space 'resnet'; valid: cnn, densenet"),
        (syn + ["--space", " , "], "--space ' , ' names no search space; valid: cnn, densenet"),
        (syn + ["--max-macs", "1000"], "the constraints rule out even the smallest 'mobilenet'"),
        (syn + ["--conv-layers", "4-2"], "bad --conv-layers '4-2'"),
        (syn + ["--conv-layers", "two"], "bad --conv-layers 'two'"),
        (syn + ["--pruner", "sometimes"], "unknown --pruner 'sometimes'; valid: median"),
        (syn + ["--study", "../escape"], "bad study name '../escape'"),
        (syn + ["--trials", "0"], "--trials must be an integer from 1 to 1,000,000, got 0"),
        (syn + ["--jobs", "-1"], "--jobs must be an integer from 0 to 1,024, got -1"),
        (syn + ["--device", "cuda:7"], "--device 'cuda:7' but this machine has"),
        (syn + ["--gpus", "7"], "--gpus 7 but this machine has"),
        (syn + ["--gpus", "0,x"], "bad --gpus '0,x'"),
        (syn + ["--gpus", "0", "--device", "cpu"], "--gpus 0 needs CUDA; got --device 'cpu'"),
        (syn + ["--sampler", "grid"], "unknown --sampler 'grid'; valid: tpe, tpe-grouped, random"),
        (syn + ["--timeout", "0"], "--timeout must be an integer from 1 to"),
        (syn + ["--objective", "speed"], "unknown --objective 'speed'; valid: accuracy, pareto"),
        (syn + ["--fill", "1.5"], "--fill must be a share of the budget from 0 to 1, got 1.5"),
        (syn + ["--memory-limit", "0"], "--memory-limit must be a number of GiB > 0, got 0.0"),
        (syn + ["--memory-limit", "nan"], "--memory-limit must be a number of GiB > 0, got nan"),
        (syn + ["--precision", "fp8"], "unknown --precision 'fp8'; valid: auto, bf16, fp32"),
        (syn + ["--runs-dir", "/proc/no-such-dir"], "cannot create study folder"),
        (syn + ["--storage", tmp / "no" / "such" / "dir.log"], "cannot open storage"),
        (syn + ["--storage", "sqlite:////no/such/dir/x.db"], "unable to open database file"),
        (["search", "--dataset", "fashion-mnist", "--data-dir", tmp / "empty"],
         "dataset 'fashion-mnist' not found in data dir"),  # (MNIST itself is embedded)
        (["search", "--config", tmp / "missing.toml"], "cannot read config"),
        (["search", "--config", bad_toml], "is not valid TOML"),
        (["search", "--config", unknown_key], "unknown key(s) budjet"),
        (["export", tmp, "--best"], "is not a study folder"),
        (["export", tmp], "needs exactly one of --best or --trial N"),
        (["pareto", tmp / "nope"], "is not a study folder"),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
    ]


def test_each_bad_input_gets_one_line_and_exit_2_and_writes_nothing(tmp_path, run, monkeypatch):
    (tmp_path / "empty").mkdir()
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)  # where ./runs would go
    for args, expected in _cases(tmp_path):
        before = sorted(tmp_path.rglob("*"))
        code, out, err = run(*args)
        assert code == 2, (args, err)
        assert err.startswith("nas: error: ") and expected in err, (args, err)
        assert err.count("\n") == 1 and "Traceback" not in err, err
        assert sorted(tmp_path.rglob("*")) == before, (args, "wrote files")
    assert not any(cwd.iterdir())  # not even an empty runs/
    assert not (tmp_path.parent / "escape").exists()


def test_console_script_and_python_m_exit_2_without_traceback(tmp_path):
    for argv in (["nas"], [sys.executable, "-m", "nas"]):
        proc = subprocess.run(argv + ["search", "--budget", "0", "--dataset", "synthetic"],
                              capture_output=True, text=True, cwd=tmp_path)
        assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
        assert not (tmp_path / "runs").exists()  # nothing written on bad input


def test_a_closed_pipe_ends_quietly(tmp_path):
    """`nas count resnet34 | head -1`: the reader leaves before nas writes; no error shown."""
    proc = subprocess.Popen(["nas", "count", "resnet34"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    proc.stdout.close()  # before nas has imported torch, so its first write meets no reader
    err = proc.stderr.read()
    assert proc.wait() == 141 and err == "", err


@pytest.mark.parametrize("flag", ["--version", "--help"])
def test_help_and_version(flag, run):
    with pytest.raises(SystemExit) as exit_:
        run(flag)
    assert exit_.value.code == 0


def test_search_help_groups_its_flags(run, capsys):
    with pytest.raises(SystemExit):
        run("search", "--help")
    out = capsys.readouterr().out
    headings = ["space and budget:", "data:", "training (each trial):", "search:",
                "storage and workers:", "device:"]
    assert all(h in out for h in headings), out
    # each flag under its own heading, in that order
    positions = [out.index(x) for x in ("\nspace and budget:", "\n  --budget", "\ndata:",
                                        "\n  --dataset", "\ntraining (each trial):",
                                        "\n  --epochs", "\nsearch:", "\n  --trials",
                                        "\nstorage and workers:", "\n  --jobs", "\ndevice:",
                                        "\n  --gpus")]
    assert positions == sorted(positions)
