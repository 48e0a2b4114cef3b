"""The flag conventions of every command (cifarhelpers.cli.common): booleans as ``--x`` / ``--no-x``,
``--version``, choices in usage, readable defaults, and hints in messages and docs that parse as written."""

from __future__ import annotations

import argparse
import re
import shlex
import typing
from pathlib import Path

import pytest

from cifarhelpers import __version__
from cifarhelpers.cli import colab as colab_cli
from cifarhelpers.cli import eval as eval_cli
from cifarhelpers.cli import notebooks as notebooks_cli
from cifarhelpers.cli import sweep as sweep_cli
from cifarhelpers.cli import train as cli
from cifarhelpers.cli.common import BooleanFlag, command_line_help, format_default, upgrade_old_booleans
from cifarhelpers.data import load_cifar10
from cifarhelpers.errors import DataError, DataNotFoundError
from cifarhelpers.sweep import spec as sweep_spec
from cifarhelpers.training import FIELD_NAMES, TrainConfig
from cifarhelpers.training import config as config_module

ROOT = Path(__file__).resolve().parents[1]
PARSERS = {
    "cifar-train": cli.build_parser,
    "cifar-sweep": sweep_cli.build_parser,
    "cifar-eval": eval_cli.build_parser,
    "cifar-notebooks": notebooks_cli.build_parser,
    "python -m cifarhelpers.cli.colab": colab_cli.build_parser,
}
#: Positional arguments a command needs before its flags parse.
POSITIONALS = {"cifar-eval": ["runs/some-run"]}
#: The module behind each ``python -m`` spelling.
MODULES = {"cifarhelpers.cli.train": "cifar-train", "cifarhelpers.cli.sweep": "cifar-sweep",
           "cifarhelpers.cli.eval": "cifar-eval", "cifarhelpers.cli.notebooks": "cifar-notebooks",
           "cifarhelpers.cli.colab": "python -m cifarhelpers.cli.colab"}


def parse(command: str, argv: list[str]) -> argparse.Namespace:
    return PARSERS[command]().parse_args([*POSITIONALS.get(command, []), *argv])


def flat_help(command: str) -> str:
    return " ".join(PARSERS[command]().format_help().split())


def _choice_fields(monkeypatch) -> dict[str, tuple[str, ...]]:
    """Every TrainConfig field validated against a fixed list, with the list (recorded from __post_init__)."""
    seen: dict[str, tuple[str, ...]] = {}
    real = config_module.check_choice

    def record(name, value, choices):
        seen[name] = tuple(choices)
        return real(name, value, choices)

    monkeypatch.setattr(config_module, "check_choice", record)
    TrainConfig()
    return seen


# -- booleans ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("command", list(PARSERS))
def test_every_boolean_flag_takes_the_x_and_no_x_forms(command):
    parser = PARSERS[command]()
    booleans = [a for a in parser._actions if isinstance(a, BooleanFlag)]
    assert booleans, f"{command} has no boolean flag"
    plain = [a.option_strings for a in parser._actions
             if isinstance(a, (argparse._StoreTrueAction, argparse._StoreFalseAction))]
    assert not plain, f"{command}: booleans without a --no- form: {plain}"
    for action in booleans:
        flag = next(o for o in action.option_strings if not o.startswith("--no-"))
        assert action.option_strings == [flag, "--no-" + flag[2:]]
        assert getattr(parse(command, [flag]), action.dest) is True
        assert getattr(parse(command, ["--no-" + flag[2:]]), action.dest) is False


@pytest.mark.parametrize("command", ["cifar-train", "cifar-sweep"])
def test_config_booleans_reach_the_config_only_when_given(command):
    booleans = [name for name, kind in typing.get_type_hints(TrainConfig).items() if kind is bool]
    assert {"amp", "download", "compile", "channels_last"} <= set(booleans)
    skip = sweep_cli._NO_FLAG if command == "cifar-sweep" else ()  # the sweep's own --output-dir, --resume
    for name in booleans:
        flag = "--" + name.replace("_", "-")
        assert cli.given_fields(parse(command, [flag]), skip) == {name: True}
        assert cli.given_fields(parse(command, ["--no-" + flag[2:]]), skip) == {name: False}
    assert cli.given_fields(parse(command, []), skip) == {}


def test_the_old_boolean_spelling_still_works_with_a_note(capsys):
    parser = cli.build_parser()
    argv = upgrade_old_booleans(parser, ["--amp", "false", "--compile=TRUE", "--epochs", "1", "--channels-last", "0",
                                         "--download", "--max-lr", "find"])
    assert argv == ["--no-amp", "--compile", "--epochs", "1", "--no-channels-last", "--download", "--max-lr", "find"]
    err = capsys.readouterr().err
    assert "'--amp false' is deprecated: write --no-amp" in err and "'--compile=TRUE' is deprecated" in err
    assert cli.given_fields(parser.parse_args(argv)) == {"amp": False, "compile": True, "epochs": 1,
                                                         "channels_last": False, "download": True, "max_lr": "find"}
    assert upgrade_old_booleans(sweep_cli.build_parser(), ["--amp", "no"]) == ["--no-amp"]


@pytest.mark.parametrize("argv", [["--amp", "maybe"], ["--amp=maybe"]])
def test_a_word_after_a_boolean_flag_is_refused_naming_both_flags(argv, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(argv)
    assert exit_.value.code == 2
    assert "argument --amp: takes no value, got 'maybe': write --amp or --no-amp" in capsys.readouterr().err


# -- --version ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("command", list(PARSERS))
def test_version_prints_the_package_version(command, capsys):
    with pytest.raises(SystemExit) as exit_:
        PARSERS[command]().parse_args(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out == f"{command} {__version__}\n"


# -- choices and help --------------------------------------------------------------------------------

@pytest.mark.parametrize("command", ["cifar-train", "cifar-sweep"])
def test_every_choice_field_shows_its_choices_in_usage(command, monkeypatch):
    fields = _choice_fields(monkeypatch)
    assert {"model", "recipe", "transform_set", "loader", "lr_rule"} <= set(fields)
    usage = PARSERS[command]().format_usage()
    for name, choices in fields.items():
        flag = "--" + name.replace("_", "-")
        assert f"[{flag} {{{','.join(choices)}}}]" in usage, f"{flag}'s choices {choices} not in usage: {usage}"
        assert cli.CHOICES[name] == choices
    assert "[--profile {auto,short,full}]" in usage


def test_other_choices_show_in_usage():
    assert "[--backend {auto,ray,sequential}]" in PARSERS["cifar-sweep"]().format_usage()
    assert "[--profile {auto,short,full}]" in PARSERS["cifar-notebooks"]().format_usage()


@pytest.mark.parametrize("command", list(PARSERS))
def test_help_reads_as_a_command_line(command):
    text = flat_help(command)
    assert not re.search(r"\b(None|True|False)\b", text), f"Python literals in {command} --help"
    assert "['" not in text, f"a Python list in {command} --help"
    assert not re.search(r"\d\.\d{7,}", text), f"an unrounded float in {command} --help"
    assert "(default: <" not in text, f"a sentinel shown as a default in {command} --help"


def test_cifar_train_help_shows_defaults_as_typed():
    text = flat_help("cifar-train")
    assert "(default: 5/24 ≈ 0.208)" in text
    assert "--max-lr MAX_LR" in text and "none takes the recipe's default" in text
    assert "(default: none)" in text and "--amp, --no-amp" in text and "(default: on)" in text


@pytest.mark.parametrize("value,shown", [(None, "none"), (True, "on"), (False, "off"), (5 / 24, "5/24 ≈ 0.208"),
                                         (0.2, "0.2"), (0.0, "0"), (1e-4, "0.0001"), (1 / 3, "1/3 ≈ 0.333"),
                                         (24, "24"), ("auto", "auto")])
def test_format_default(value, shown):
    assert format_default(value) == shown


def test_command_line_help_rewords_python():
    assert command_line_help("a model, one of ['a', 'b'] (x); None means all") == "a model (x); none means all"
    assert command_line_help("bf16 on GPUs; False: fp32 everywhere", "--amp") == \
        "bf16 on GPUs; --no-amp: fp32 everywhere"


# -- cifar-notebooks ---------------------------------------------------------------------------------

def test_cifar_notebooks_options_are_at_the_top_level_and_run_is_optional():
    help_text = flat_help("cifar-notebooks")
    for option in ("-p NAME VALUE", "--parameters-file FILE", "--log-output, --no-log-output", "--profile",
                   "--output-dir", "--notebooks-dir", "--version"):
        assert option in help_text
    argv = ["-p", "epochs", "5", "--profile", "short", "--no-log-output"]
    assert vars(parse("cifar-notebooks", argv)) == vars(parse("cifar-notebooks", ["run", *argv]))
    with pytest.raises(SystemExit):
        parse("cifar-notebooks", ["walk"])


# -- hints that run as written -----------------------------------------------------------------------

def _commands_in(message: str) -> list[str]:
    return re.findall(r"\((cifar-(?:train|sweep|eval|notebooks)\b[^)]*)\)", message)


def _parses(command_line: str) -> argparse.Namespace:
    words = shlex.split(command_line)
    if words[:2] == ["python", "-m"]:
        words = [MODULES[words[2]], *words[3:]]
    try:
        return PARSERS[words[0]]().parse_args(words[1:])
    except SystemExit as exit_:  # --help and --version exit with 0; a bad command with 2
        assert exit_.code == 0, f"{command_line!r} does not parse"
        return argparse.Namespace()


def test_the_missing_data_hint_is_a_command_that_parses(tmp_path):
    with pytest.raises(DataNotFoundError) as info:
        load_cifar10(tmp_path / "nowhere", progress=False)
    commands = _commands_in(str(info.value))
    assert commands == ["cifar-train --download"], str(info.value)
    assert cli.given_fields(_parses(commands[0])) == {"download": True}


def test_the_incomplete_torchvision_copy_hint_is_a_command_that_parses(tmp_path):
    (tmp_path / "cifar-10-batches-py").mkdir()
    with pytest.raises(DataError) as info:
        load_cifar10(tmp_path, progress=False)
    commands = _commands_in(str(info.value))
    assert commands, str(info.value)
    for command in commands:
        assert cli.given_fields(_parses(command)) == {"download": True}


def test_the_sweep_hints_parse_with_cifar_sweep():
    for field, hint in sweep_spec.NOT_SWEPT.items():
        for fragment in re.findall(r"\(((?:cifar-sweep )?--[^)]*)\)", hint):
            words = shlex.split(fragment.removeprefix("cifar-sweep "))
            sweep_cli.build_parser().parse_args(words)  # exits with status 2 if it does not parse


def _code_blocks(markdown: str) -> str:
    """The lines inside a Markdown file's fenced code blocks."""
    return "\n".join(block for i, block in enumerate(markdown.split("```")) if i % 2)


def _documented_commands() -> list[str]:
    """Command lines in the commands' docstrings and in the code blocks of README.md and docs/*.md:
    lines that start with one."""
    start = re.compile(r"^\s*(?:\.venv/bin/)?((?:cifar-(?:train|sweep|eval|notebooks)|python -m cifarhelpers\.("
                       + "|".join(re.escape(m.removeprefix("cifarhelpers.")) for m in MODULES) + r"))\b.*)$")
    texts = [m.__doc__ for m in (cli, sweep_cli, eval_cli, notebooks_cli, colab_cli)]
    texts += [_code_blocks(path.read_text()) for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]]
    lines = [start.match(line) for text in texts for line in text.splitlines()]
    return [re.sub(r"\s+#.*$", "", m.group(1)).strip() for m in lines if m]


def test_the_documented_commands_parse():
    commands = _documented_commands()
    assert len(commands) > 15 and "cifar-train --max-lr find" in commands
    for command in commands:
        _parses(command)


def test_every_field_has_a_flag_in_cifar_train():
    flags = {o for a in cli.build_parser()._actions for o in a.option_strings}
    assert {"--" + name.replace("_", "-") for name in FIELD_NAMES} <= flags
