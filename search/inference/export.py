"""A finalized model on disk: its weights (safetensors: no code runs on loading), a JSON
config enough to rebuild it without the search, and a short model card. A fold ensemble
(the fold models of a cross-validated winner, probabilities averaged) is one model folder
whose weights hold every member's, `members.<i>.`-prefixed. Beside them, when finalize
calibrated it, `conformal.json`: the model's class-conditional conformal calibration on its
out-of-fold patients, from which predict gives each patient the classes it cannot rule
out. A folder without one (an older export) is read as before, without sets."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

from results.conformal import ConformalSets
from search.errors import FinalizeError
from search.files import write_atomic, write_json_atomic
from trainables.config import TrialConfig
from trainables.ensemble import ModelEnsemble
from trainables.model import PolarMapNet
from trainables.weights import create_backbone

__all__ = [
    "CONFIG_FILE",
    "CONFORMAL_FILE",
    "WEIGHTS_FILE",
    "ExportedModel",
    "load_model",
    "predict_probabilities",
    "save_model",
]

WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
CARD_FILE = "MODEL_CARD.md"
CONFORMAL_FILE = "conformal.json"
FORMAT = "polarmap-model/2"
READABLE = ("polarmap-model/1", FORMAT)  # /1: one model, no `members`
# what to do about a damaged file
_EXPORT_AGAIN = "copy the model folder again, or export it again with polarmap finalize"

Classifier = PolarMapNet | ModelEnsemble


@dataclass(frozen=True)
class ExportedModel:
    """What a model folder says of its model, beside the weights."""

    trial: dict[str, Any]  # TrialConfig.to_flat(): backbone, views, head, protocol
    class_names: tuple[str, ...]
    input_size: int
    threshold: float | None  # binary class sets: class 1 from this probability
    provenance: dict[str, Any]  # search, trial, seed, data and test fingerprints, versions
    members: int = 1  # fold models averaged (1: a single model)
    # its conformal calibration (conformal.json, not config.json); None: none stored
    conformal: ConformalSets | None = field(default=None, repr=False)

    @property
    def config(self) -> TrialConfig:
        return TrialConfig.from_flat(self.trial)

    @property
    def views(self) -> tuple[str, ...]:
        return tuple(self.trial["views"])


def save_model(folder: Path, model: Classifier, exported: ExportedModel, card: str) -> Path:
    """Write the model folder (each file whole or not at all); returns it. The model's
    calibration (`exported.conformal`) goes to conformal.json; without one, a
    conformal.json left from an earlier export is removed, as it would not be this
    model's.

    Raises:
        ValueError: the calibration is not of the model's number of classes.
    """
    conformal = exported.conformal
    if conformal is not None and len(conformal.counts) != len(exported.class_names):
        raise ValueError(
            f"conformal calibration of {len(conformal.counts)} classes for a model of "
            f"{len(exported.class_names)}"
        )
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    write_atomic(folder / WEIGHTS_FILE, save_safetensors(state))
    record = asdict(replace(exported, conformal=None))
    del record["conformal"]
    record = {"format": FORMAT, **record, "class_names": list(exported.class_names)}
    write_json_atomic(folder / CONFIG_FILE, record)
    if conformal is None:
        (folder / CONFORMAL_FILE).unlink(missing_ok=True)
    else:
        write_json_atomic(folder / CONFORMAL_FILE, conformal.to_json())
    write_atomic(folder / CARD_FILE, card)
    return folder


def load_model(folder: str | Path) -> tuple[Classifier, ExportedModel]:
    """The model of a folder `save_model` wrote, in eval mode on the CPU; its conformal
    calibration, when the folder has one, in the ExportedModel's `conformal`.

    Raises:
        FileNotFoundError: the folder lacks its config or weights.
        FinalizeError: the config, the weights or the calibration cannot be read (cut
            short, overwritten, not a polarmap model's), or the weights or the calibration
            do not fit the config; it names the file.
    """
    folder = Path(folder)
    for name in (CONFIG_FILE, WEIGHTS_FILE):
        if not (folder / name).is_file():
            raise FileNotFoundError(f"{folder}: no {name}; is this a model folder?")
    exported = _read_config(folder / CONFIG_FILE)
    if (folder / CONFORMAL_FILE).is_file():
        conformal = _read_conformal(folder / CONFORMAL_FILE, len(exported.class_names))
        exported = replace(exported, conformal=conformal)
    config = exported.config

    def member() -> PolarMapNet:
        backbone = create_backbone(config.backbone, pretrained=False)  # the weights follow
        return PolarMapNet(backbone, len(config.views), len(exported.class_names), config.head)

    try:
        model: Classifier = member()
        if exported.members > 1:
            model = ModelEnsemble([model] + [member() for _ in range(exported.members - 1)])
    except (KeyError, ValueError) as exc:  # an unknown backbone, no classes
        raise FinalizeError(
            f"{folder / CONFIG_FILE}: its model cannot be built ({exc}); {_EXPORT_AGAIN}"
        ) from exc
    state = _read_weights(folder / WEIGHTS_FILE)
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise FinalizeError(
            f"{folder / WEIGHTS_FILE}: weights do not fit the config: {exc}"
        ) from exc
    return model.eval(), exported


def _read_config(path: Path) -> ExportedModel:
    """What config.json says of the model; every problem a FinalizeError naming it."""
    try:
        record = json.loads(_read(path))
    except ValueError as exc:  # JSON cut short or overwritten, or not UTF-8
        raise FinalizeError(f"{path}: not valid JSON ({exc}); {_EXPORT_AGAIN}") from exc
    if not isinstance(record, dict):
        raise FinalizeError(
            f"{path}: not a polarmap model's config (a JSON object with its format, "
            f"trial, classes ...); {_EXPORT_AGAIN}"
        )
    if record.get("format") not in READABLE:
        raise FinalizeError(
            f"{path}: format {record.get('format')!r}, not one of {', '.join(READABLE)}"
        )
    record.pop("format")
    try:
        if "conformal" in record:  # its place is conformal.json
            raise ValueError("unexpected field 'conformal'")
        exported = ExportedModel(**{**record, "class_names": tuple(record["class_names"])})
        _ = exported.config  # the trial's configuration must rebuild
        if not isinstance(exported.members, int) or exported.members < 1:
            raise ValueError(f"members {exported.members!r}, expected 1 or more")
    except KeyError as exc:
        raise FinalizeError(
            f"{path}: not a polarmap model's config (no {exc}); {_EXPORT_AGAIN}"
        ) from exc
    except (TypeError, ValueError) as exc:
        raise FinalizeError(
            f"{path}: not a polarmap model's config ({exc}); {_EXPORT_AGAIN}"
        ) from exc
    return exported


def _read_conformal(path: Path, classes: int) -> ConformalSets:
    """The calibration of conformal.json; every problem a FinalizeError naming it."""
    try:
        record = json.loads(_read(path))
    except ValueError as exc:  # JSON cut short or overwritten, or not UTF-8
        raise FinalizeError(f"{path}: not valid JSON ({exc}); {_EXPORT_AGAIN}") from exc
    try:
        conformal = ConformalSets.from_json(record)
    except ValueError as exc:
        raise FinalizeError(
            f"{path}: not a conformal calibration ({exc}); {_EXPORT_AGAIN}"
        ) from exc
    if len(conformal.counts) != classes:
        raise FinalizeError(
            f"{path}: a calibration of {len(conformal.counts)} classes for a model of "
            f"{classes}; {_EXPORT_AGAIN}"
        )
    return conformal


def _read_weights(path: Path) -> dict[str, torch.Tensor]:
    """The tensors of model.safetensors; a file that is not one a FinalizeError naming it."""
    try:
        return load_safetensors(_read(path, binary=True))
    except (SafetensorError, ValueError, RuntimeError) as exc:
        raise FinalizeError(
            f"{path}: not a readable safetensors file ({exc}); {_EXPORT_AGAIN}"
        ) from exc


def _read(path: Path, binary: bool = False):
    try:
        return path.read_bytes() if binary else path.read_text(encoding="utf-8")
    except OSError as exc:  # no permission, a failing disk
        raise FinalizeError(f"{path}: cannot be read ({exc.strerror or exc})") from exc


def predict_probabilities(model: Classifier, x: torch.Tensor, batch: int = 64) -> torch.Tensor:
    """Class probabilities (N, classes) of maps (N, V, 3, H, W), in eval mode."""
    model.eval()
    with torch.no_grad():
        parts = [torch.softmax(model(x[s : s + batch]), dim=1) for s in range(0, len(x), batch)]
    return torch.cat(parts) if parts else torch.zeros(0, model.num_classes)
