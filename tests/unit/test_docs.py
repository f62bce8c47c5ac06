"""The docs stay true: every option, capability and fixture is documented, and CI runs
the README's test command."""

from __future__ import annotations

import re
from pathlib import Path

from pytest_sidecar import plugin
from pytest_sidecar.options import OPTIONS
from pytest_sidecar.vocabulary.capabilities import CAPABILITIES

ROOT = Path(__file__).resolve().parents[2]


def test_every_option_is_in_the_configuration_doc() -> None:
    text = (ROOT / "docs" / "configuration.md").read_text()
    for option in OPTIONS:
        assert f"| `{option.cli}` | `{option.env}` | `{option.ini}` |" in text, option.cli


def test_every_capability_is_in_the_target_file_doc() -> None:
    text = (ROOT / "docs" / "target-file.md").read_text()
    for name, cap in CAPABILITIES.items():
        assert f"| `{name}` | {cap.profile} | {cap.section} |" in text, name


def test_every_fixture_is_in_the_writing_specs_doc() -> None:
    text = (ROOT / "docs" / "writing-specs.md").read_text()
    for name in plugin.__all__:
        assert f"| `{name}` |" in text, name


def test_ci_runs_the_readme_test_command() -> None:
    readme = (ROOT / "README.md").read_text()
    commands = re.findall(r"```bash\n(python3 -m venv .*)\n```", readme)
    assert len(commands) == 2, "the Quickstart has exactly two commands"
    test_command = commands[1].split("&& ")[-1]
    assert test_command in (ROOT / ".ci" / "run").read_text()


def test_the_readme_tox_commands_work_after_the_readme_install() -> None:
    """The README's `tox -e ...` commands: tox comes with the dev extra the README installs,
    and every environment named exists."""
    import configparser
    import tomllib

    readme = (ROOT / "README.md").read_text()
    dev = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"]["dev"]
    assert any(re.match(r"tox\b", requirement) for requirement in dev)
    tox = configparser.ConfigParser()
    tox.read(ROOT / "tox.ini")
    envs = tox["tox"]["envlist"].replace(",", " ").split()
    named = re.findall(r"tox -e (\w+)", readme)
    assert named and set(named) <= set(envs)
