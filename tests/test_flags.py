"""Each setting's flag is declared once (nas.flags): the parsers of `nas search`, `nas train`
and `nas baseline`, the checks and their error lines, the recorded settings and the CLI
reference all come from that declaration."""

from dataclasses import asdict, fields

import pytest

from nas import flags
from nas.baseline import BaselineConfig
from nas.cli import build_parser
from nas.config import LOCAL_SETTINGS, SearchConfig
from nas.errors import UsageError, integer
from nas.train import RetrainConfig

CONFIGS = {"search": SearchConfig, "train": RetrainConfig, "baseline": BaselineConfig}
SHARED = ("data_dir", "limit_train", "epochs", "time", "batch_size", "lr", "augment", "seed", "device")


def command_parser(name):
    parser = build_parser()
    return next(a for a in parser._actions if a.dest == "command").choices[name]


def test_every_search_setting_is_a_declared_flag_that_is_parsed_and_recorded():
    declared = {f.name for f in flags.declared(SearchConfig)}
    assert declared == {f.name for f in fields(SearchConfig)}
    parsed = {a.dest for a in command_parser("search")._actions}
    assert declared <= parsed
    recorded = {k for k in asdict(SearchConfig(dataset="synthetic")) if k not in LOCAL_SETTINGS}
    assert recorded == declared - set(LOCAL_SETTINGS)


def test_the_training_flags_are_one_declaration_for_search_train_and_baseline():
    for name in SHARED:
        declared = [next(f for f in fields(config) if f.name == name).metadata["flag"]
                    for config in CONFIGS.values()]
        assert all(d is declared[0] for d in declared), name
        for command in CONFIGS:
            action = next(a for a in command_parser(command)._actions if a.dest == name)
            assert action.help.startswith(declared[0].help), (command, name)
            assert action.type is declared[0].parse


@pytest.mark.parametrize("config", list(CONFIGS.values()), ids=list(CONFIGS))
def test_each_declared_range_refuses_the_value_past_it_and_takes_its_bound(config):
    checked = 0
    for f in flags.declared(config):
        flag = f.metadata["flag"]
        step = 1 if flag.parse is integer else 0.5
        if flag.low is not None:
            with pytest.raises(UsageError, match=f"^{flags.flag_name(f.name)} must be "):
                flags.check(f.name, flag.low - step, flag)
            if not flag.low_open:
                flags.check(f.name, flag.low, flag)
            checked += 1
        if flag.high is not None:
            with pytest.raises(UsageError, match=f"^{flags.flag_name(f.name)} must be "):
                flags.check(f.name, flag.high + step, flag)
            if not flag.high_open:
                flags.check(f.name, flag.high, flag)
        if flag.choices is not None:
            with pytest.raises(UsageError, match=f"^unknown {flags.flag_name(f.name)} 'nope'; valid: "):
                flags.check(f.name, "nope", flag)
    assert checked >= 4


@pytest.mark.parametrize("command", ["search", "train", "baseline"])
def test_a_shared_flag_out_of_range_is_the_same_line_from_every_command(command, run, tmp_path):
    args = {"search": ["search", "--dataset", "synthetic"], "train": ["train", tmp_path, "--best"],
            "baseline": ["baseline", "resnet18", tmp_path]}[command]
    for flag, value, line in (("--batch-size", "0", "--batch-size must be an integer from 1 to 1,048,576, got 0"),
                              ("--seed", "-1", "--seed must be an integer from 0 to 2,147,483,647, got -1"),
                              ("--lr", "-0.1", "--lr must be a positive number, got -0.1"),
                              ("--augment", "blur", "unknown --augment 'blur'; valid: none, crop")):
        code, _, err = run(*args, flag, value)
        assert code == 2 and line in err, (command, err)
