"""Without a GPU the card's command, `nas search --space mobilenet --budget 50000`, is sized
to end within ten minutes and says so first; any size flag, or --full, is taken as given.
(The ten minutes and the accuracy it reaches are measured by benchmarks/card_command.sh.)"""

import os
import signal
import subprocess
import sys

import pytest

from nas import config, store


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
    assert lines[0] == ("no GPU here: search sized to this CPU, about 9m in all (--time 9m "
                        "--epochs 1 --max-macs 500,000 --trials 30).")
    assert lines[1] == ("full search (20 trials x 3 epochs on every training image, hours on a "
                        "CPU): add --full, and --study NAME to keep it apart from this study")
    assert lines[-1] == ("searching 'mobilenet' on mnist (54,000 train / 6,000 val images) under "
                         "50,000 params: 30 trials x 1 epoch on cpu")
    stored = store.load_study(tmp_path / "runs" / "mnist-50k").user_attrs["config"]
    assert (stored["time"], stored["max_macs"], stored["epochs"]) == (540, 500_000, 1)


@pytest.mark.parametrize("given, full", [({"epochs": 5}, False), ({"trials": 3}, False),
                                         ({"time": "1h"}, False), ({}, True)])
def test_a_size_flag_or_full_is_taken_as_given(given, full):
    cfg, note = config.from_settings({"device": "cpu", **given}, full=full)
    assert note is None and cfg.max_macs is None
    assert (cfg.epochs, cfg.trials) == (given.get("epochs", 3), given.get("trials", 20))


def test_a_preset_that_sizes_the_search_is_taken_as_given(tmp_path):
    preset = tmp_path / "p.toml"
    preset.write_text('[search]\nlimit-train = 3000\n')
    cfg, note = config.from_settings({"device": "cpu"}, str(preset))
    assert note is None and cfg.limit_train == 3000 and cfg.time is None
