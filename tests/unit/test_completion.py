"""Shell completion, read off the parser: checked in a real bash."""

from __future__ import annotations

import shutil
import subprocess

from bridge.cli.completion import bash_script, command_tree
from bridge.cli.main import build_parser


def complete(script: str, *words: str) -> list[str]:
    """What bash offers after `words` (the last is the one being typed)."""
    line = " ".join(f"'{w}'" for w in ("import-bridge", *words))
    run = subprocess.run(
        [str(shutil.which("bash")), "-c",
         f'source /dev/stdin; COMP_WORDS=({line}); COMP_CWORD={len(words)}; '
         '_import_bridge; echo "${COMPREPLY[*]}"'],
        input=script, capture_output=True, text=True, timeout=30, check=True,
    )  # fmt: skip
    assert run.stderr == ""
    return run.stdout.split()


def test_bash_completes_commands_subcommands_and_options() -> None:
    """Commands, their subcommands and their options are offered, with options and
    their values anywhere before the word being typed."""
    script = bash_script(build_parser(), ("import-bridge", "bridge"))
    assert complete(script, "wat") == ["watch"]
    assert complete(script, "wa") == ["watch", "wait"]
    assert {"add", "ls", "show", "rm"} <= set(complete(script, "watch", ""))
    assert "--event-type" in complete(script, "--debug", "sub", "add", "--source", "fs", "--e")
    assert complete(script, "events", "ty") == ["types"]


def test_the_tree_holds_every_command() -> None:
    """Every command the parser knows has its place in the tree, with --help."""
    tree = command_tree(build_parser())
    assert {"_ run", "_ config check", "_ watch add", "_ sub rotate", "_ completion"} <= set(tree)
    assert all("--help" in words for words in tree.values())
