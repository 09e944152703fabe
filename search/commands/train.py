"""`polarmap train`: one trial outside any search, with per-epoch figures."""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path
from typing import Any

from search.commands.options import (
    UsageError,
    add_cache_option,
    add_data_options,
    argtype,
    checked_dataset,
    non_negative_int,
    number_type,
    positive_float,
    positive_int,
    seed_number,
    split_from_args,
)
from search.commands.preprocess import format_cleaning
from search.commands.report import format_split_table
from search.data import split_patients
from search.data.map_cache import MapCache
from search.data.normalize import backbone_input
from search.data.preprocess import PreprocessSpec, preprocess_dataset
from search.files import write_json_atomic
from search.provenance import provenance

__all__ = ["register"]


def register(commands: argparse._SubParsersAction) -> None:
    train = commands.add_parser(
        "train",
        help="run one trial (warm-up, then fine-tune) outside any search",
        description="Check the data set, split it by patient, clean the maps (cached), then "
        "run the two-stage protocol for one configuration: warm-up with the backbone frozen "
        "at lr 10^-a, then fine-tune of the top --unfreeze layers at 10^-(a+2), keeping the "
        "best validation epoch of each. Prints every epoch's figures and the best epochs; "
        "the test split is never used.",
    )
    add_data_options(train, data_flag=True)
    _add_model_options(train.add_argument_group("model"))
    _add_protocol_options(train.add_argument_group("protocol"))
    add_cache_option(train)
    train.add_argument(
        "--frozen-store",
        type=Path,
        default=None,
        help="folder where trials share the frozen part's output (default beside the map "
        "cache, or $POLARMAP_FROZEN)",
    )
    train.add_argument("--out", type=Path, default=None, help="write the trial record here")
    train.set_defaults(func=run_train, parser=train)


def _add_model_options(model: argparse._ArgumentGroup) -> None:
    model.add_argument("--backbone", required=True, help="timm model name, e.g. resnet18")
    model.add_argument("--width", type=positive_int, default=256, help="head width (default 256)")
    model.add_argument(
        "--depth", type=non_negative_int, default=1, help="hidden head layers (default 1)"
    )
    model.add_argument(
        "--dropout",
        type=number_type(float, 0, below=1),
        default=0.3,
        help="head dropout (default 0.3)",
    )
    model.add_argument(
        "--pretrained",
        action="store_true",
        help="start from ImageNet weights (from --weights, else the model hub)",
    )
    model.add_argument("--weights", default=None, help="weights file or folder, or an s3:// prefix")


def _add_protocol_options(protocol: argparse._ArgumentGroup) -> None:
    share = number_type(float, 0, 1)  # of the backbone's layers or parameters
    protocol.add_argument(
        "--a", type=positive_float, default=3.5, help="lr exponent: 10^-a (default 3.5)"
    )
    protocol.add_argument(
        "--unfreeze", type=non_negative_int, default=3, help="top layers to fine-tune (default 3)"
    )
    protocol.add_argument(
        "--max-layer-share",
        type=share,
        default=1 / 3,
        help="fine-tune at most this share of the backbone's layers (default 1/3, the seed)",
    )
    protocol.add_argument(
        "--max-param-share",
        type=share,
        default=1 / 3,
        help="... and at most this share of its parameters (default 1/3, the seed)",
    )
    protocol.add_argument("--warmup-epochs", type=positive_int, default=100, help="(default 100)")
    protocol.add_argument(
        "--finetune-epochs", type=non_negative_int, default=30, help="(default 30)"
    )
    protocol.add_argument("--batch-size", type=positive_int, default=32, help="(default 32)")
    protocol.add_argument(
        "--augment",
        type=argtype(_augment),
        default="none",
        help="none, or hflip, vflip, rotate<degrees> joined by '+' (default none)",
    )
    protocol.add_argument(
        "--augment-copies",
        type=positive_int,
        default=8,
        help="with --augment and the feature cache: augmented copies per map whose frozen "
        "work is done once; every epoch draws one (default 8)",
    )
    protocol.add_argument(
        "--class-weighted", action="store_true", help="weigh the loss by inverse class size"
    )
    protocol.add_argument(
        "--selection",
        default="balanced_accuracy",
        help="validation metric that picks epochs (default balanced_accuracy)",
    )
    protocol.add_argument(
        "--no-feature-cache",
        dest="feature_cache",
        action="store_false",
        help="exact mode: run the whole model every batch instead of starting from the "
        "frozen part's cached output",
    )
    protocol.add_argument(
        "--fold", type=non_negative_int, default=None, help="with --folds: which fold, from 0"
    )
    protocol.add_argument(
        "--trial-seed", type=seed_number, default=0, help="training seed (default 0)"
    )
    protocol.add_argument("--threads", type=positive_int, default=2, help="CPU threads (default 2)")


def _augment(text: str):
    from trainables.config import AugmentSpec

    return AugmentSpec.parse(text)


def run_train(args: argparse.Namespace) -> int:
    from trainables.data import trial_data
    from trainables.frozen_store import FrozenWorkStore
    from trainables.protocol import run_protocol

    try:
        inputs = backbone_input(args.backbone)
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    config = _config_from_args(args)
    spec = split_from_args(args)
    _check_fold(args.fold, spec.folds)
    dataset = checked_dataset(args)
    if dataset is None:
        return 1
    config = replace(config, views=dataset.views)

    split = split_patients(dataset.labels, spec, dataset.class_set.names)
    print(f"{dataset.source}: {len(dataset)} patients, {spec.describe()}")
    print(format_split_table(dataset, split))
    cleaned = preprocess_dataset(dataset, PreprocessSpec(inputs.size), MapCache(args.cache))
    print(format_cleaning(cleaned))
    data = trial_data(
        cleaned, dataset.labels, split, dataset.views, inputs, dataset.class_set.names, args.fold
    )
    print(
        f"\n{args.backbone} ({inputs.size} px), mode {'+'.join(dataset.views)}: "
        f"{len(data.train_y)} train / {len(data.val_y)} validation patients"
    )
    store = FrozenWorkStore(args.frozen_store)
    result = run_protocol(config, data, report=_print_epoch, store=store)
    _print_summary(config, result)
    if args.out:
        write_json_atomic(args.out, _trial_record(config, dataset, split, result))
        print(f"wrote {args.out}")
    return 0


def _config_from_args(args: argparse.Namespace):
    """The trial's configuration (its views come from the data set, once checked)."""
    from trainables.config import HeadSpec, TrialConfig, UnfreezeRule

    try:
        return TrialConfig(
            backbone=args.backbone,
            views=(),
            head=HeadSpec.uniform(args.width, args.depth, args.dropout),
            a=args.a,
            unfreeze=args.unfreeze,
            warmup_epochs=args.warmup_epochs,
            finetune_epochs=args.finetune_epochs,
            batch_size=args.batch_size,
            augment=args.augment,
            class_weighted=args.class_weighted,
            selection=args.selection,
            seed=args.trial_seed,
            threads=args.threads,
            pretrained=args.pretrained,
            weights=args.weights,
            rule=UnfreezeRule(args.max_layer_share, args.max_param_share),
            feature_cache=args.feature_cache,
            augment_copies=args.augment_copies,
        )
    except ValueError as exc:
        raise UsageError(str(exc)) from exc


def _check_fold(fold: int | None, folds: int | None) -> None:
    """--fold and --folds go together, the fold within range."""
    if folds and fold is None:
        raise UsageError("--folds needs --fold N to say which fold validates")
    if fold is not None and not folds:
        raise UsageError(f"--fold {fold} needs --folds K")
    if fold is not None and not 0 <= fold < folds:
        raise UsageError(f"--fold {fold}: expected 0 to {folds - 1} with --folds {folds}")


def _print_summary(config, result) -> None:
    """The kept epochs, what fine-tune unfroze, how the trial computed, its best figures."""
    best, unfreezing = result.best, result.unfreezing
    print(
        f"\nbest warm-up epoch {best['warmup_epoch']}, best fine-tune epoch "
        f"{best['finetune_epoch'] or '- (none beat warm-up)'}; unfreeze requested "
        f"{unfreezing['requested']}, effective {unfreezing['effective']} "
        f"(allowed {unfreezing.get('allowed', '-')}, "
        f"{100 * unfreezing.get('trainable_share', 0):.1f} % of backbone parameters)"
    )
    print(
        f"compute path: warm-up {result.compute_path['warmup']}, "
        f"fine-tune {result.compute_path['finetune']}, "
        f"augmentation {result.compute_path['augmentation']}"
    )
    print(
        f"best validation: {config.selection} {best['val_' + config.selection]:.3f}, "
        f"accuracy {best['val_accuracy']:.3f}, ROC AUC {best['val_roc_auc']:.3f}, "
        f"loss {best['val_loss']:.3f}"
    )


def _trial_record(config, dataset, split, result) -> dict[str, Any]:
    """What --out keeps: the configuration, the data it ran on, every epoch, provenance."""
    return {
        "format": "polarmap-trial/1",
        "config": config.to_flat(),
        "data_fingerprint": dataset.fingerprint,
        "test_fingerprint": split.test_fingerprint,
        "best": result.best,
        "unfreezing": result.unfreezing,
        "compute_path": result.compute_path,
        "history": result.history,
        **provenance(),
    }


def _print_epoch(record: dict[str, Any], state: dict[str, Any]) -> None:
    print(
        f"epoch {record['epoch']:>4} {record['stage']:<8} train loss {record['train_loss']:.4f}"
        f"  val loss {record['val_loss']:.4f}  bal acc {record['val_balanced_accuracy']:.3f}"
        f"  AUC {record['val_roc_auc']:.3f}  best {record['best_selection']:.3f}"
        f" @{record['best_epoch']}  ({record['epoch_seconds']:.1f} s)",
        flush=True,
    )
