"""Without a GPU the card's command, `nas search --space mobilenet --budget 50000`, is a
--time search of ten minutes, final training included, and says its plan first; any size
flag, or --full, is taken as given.
(The ten minutes and the accuracy it reaches are measured by benchmarks/card_command.sh.)"""

import os
import re
import signal
import subprocess
import sys

import pytest

from nas import config
from nas.storage import load_study


def test_the_cards_command_on_a_cpu_says_how_it_was_sized_and_runs_that_size(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "NAS_DATA_DIR"}  # the embedded MNIST
    env["CUDA_VISIBLE_DEVICES"] = ""  # a machine without a GPU, also where the suite has one
    proc = subprocess.Popen([sys.executable, "-m", "nas", "search", "--space", "mobilenet",
                             "--budget", "50000", "--no-progress"], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines = []
    while not lines or not lines[-1].startswith("searching"):
        line = proc.stdout.readline()
        assert line, proc.stderr.read()
        lines.append(line.rstrip("\n"))
    proc.send_signal(signal.SIGTERM)  # enough seen: stop it as a user would
    assert proc.wait(timeout=60) == 128 + signal.SIGTERM
    assert lines[0] == ("no GPU here: sized to this CPU, 10m in all, search then final training "
                        "(--time 10m).")
    assert lines[1] == ("full search (20 trials x 3 epochs on every training image, hours on a "
                        "CPU, no final training): add --full, and --study NAME to keep it apart "
                        "from this study")
    plan = next(line for line in lines if line.startswith("plan: "))
    assert re.fullmatch(r"plan: search until \d\d:\d\d:\d\d \(each trial 25s\), then train the "
                        r"best net on all 60,000 training images until \d\d:\d\d:\d\d, into "
                        r"runs/mnist-50k/final/ \(nas export --best writes it\)", plan), plan
    assert lines[-1] == ("searching 'mobilenet' on mnist (54,000 train / 6,000 val images) under "
                         "50,000 params: trials of 25s each on cpu")
    stored = load_study(tmp_path / "runs" / "mnist-50k").user_attrs["config"]
    assert (stored["time"], stored["max_macs"], stored["epochs"]) == (600, None, None)


@pytest.mark.parametrize("given, full", [({"epochs": 5}, False), ({"trials": 3}, False),
                                         ({"time": "1h"}, False), ({}, True)])
def test_a_size_flag_or_full_is_taken_as_given(given, full):
    cfg, note = config.from_settings({"device": "cpu", **given}, full=full)
    assert note is None and cfg.max_macs is None
    if "time" in given:  # the time decides how many trials, and each trial's epochs
        assert (cfg.epochs, cfg.trials) == (None, config.TIMED_TRIALS)
    else:
        assert (cfg.epochs, cfg.trials) == (given.get("epochs", 3), given.get("trials", 20))


def test_a_preset_that_sizes_the_search_is_taken_as_given(tmp_path):
    preset = tmp_path / "p.toml"
    preset.write_text('[search]\nlimit-train = 3000\n')
    cfg, note = config.from_settings({"device": "cpu"}, str(preset))
    assert note is None and cfg.limit_train == 3000 and cfg.time is None
