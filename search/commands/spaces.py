"""`polarmap spaces list|show`: the search spaces this tool ships."""

from __future__ import annotations

import argparse

from search.commands.options import UsageError
from spaces import PRESETS, get_space

__all__ = ["register"]


def register(commands: argparse._SubParsersAction) -> None:
    spaces = commands.add_parser("spaces", help="list and show search spaces")
    actions = spaces.add_subparsers(dest="action", metavar="ACTION", required=True)
    listing = actions.add_parser("list", help="the spaces, one line each")
    listing.set_defaults(func=list_spaces)
    show = actions.add_parser("show", help="one space in full")
    show.add_argument("name", help="the space's name")
    show.set_defaults(func=show_space, parser=show)


def list_spaces(args: argparse.Namespace) -> int:
    for space in PRESETS.values():
        print(
            f"{space.name:14} {len(space.backbones):>2} backbone(s) x {len(space.modes)} "
            f"mode(s), {space.classes}, {space.warmup_epochs} + {space.finetune_epochs} epochs, "
            f"{space.samples} trials per pair"
        )
    return 0


def show_space(args: argparse.Namespace) -> int:
    try:
        space = get_space(args.name)
    except KeyError as exc:
        raise UsageError(str(exc.args[0])) from exc
    print(f"{space.name}: {space.description}")
    print(f"  backbones: {', '.join(space.backbones)}")
    print(f"  modes: {', '.join(space.modes)}; classes: {space.classes}")
    print(
        f"  epochs: warm-up {space.warmup_epochs}, fine-tune {space.finetune_epochs}; "
        f"{space.samples} trials per pair; "
        f"{'ImageNet weights' if space.pretrained else 'random initialisation'}"
    )
    print("  ranges:")
    for name, value in space.ranges.describe():
        print(f"    {name:11} {value}")
    return 0
