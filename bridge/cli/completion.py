"""Bash completion for import-bridge, read off the argument parser itself, so that it
never falls behind the commands: `eval "$(import-bridge completion bash)"`."""

from __future__ import annotations

import argparse
import shlex


def command_tree(parser: argparse.ArgumentParser, path: str = "_") -> dict[str, list[str]]:
    """For each command path ("_" for none, "_ watch", "_ watch add": bash wants no
    empty key): the words that may follow it (its subcommands, then its options)."""
    tree: dict[str, list[str]] = {}
    words: list[str] = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                words.append(name)
                tree.update(command_tree(sub, f"{path} {name}"))
    words += [opt for action in parser._actions for opt in action.option_strings]
    tree[path] = words
    return tree


def bash_script(parser: argparse.ArgumentParser, names: tuple[str, ...]) -> str:
    """A bash completion function over the command tree, for each name of the command."""
    entries = " ".join(
        f"[{shlex.quote(path)}]={shlex.quote(' '.join(words))}"
        for path, words in sorted(command_tree(parser).items())
    )
    return f"""# bash completion for {names[0]}
declare -gA _import_bridge_tree=({entries})
_import_bridge() {{
  local cur="${{COMP_WORDS[COMP_CWORD]}}" path="_" word
  for word in "${{COMP_WORDS[@]:1:COMP_CWORD-1}}"; do
    [[ "$word" != -* && -n "${{_import_bridge_tree["$path $word"]+set}}" ]] && path="$path $word"
  done
  COMPREPLY=($(compgen -W "${{_import_bridge_tree["$path"]}}" -- "$cur"))
}}
complete -F _import_bridge {" ".join(names)}
"""
