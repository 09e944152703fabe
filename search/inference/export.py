"""A finalized model on disk: its weights (safetensors: no code runs on loading), a JSON
config enough to rebuild it without the search, and a short model card. A fold ensemble
(the fold models of a cross-validated winner, probabilities averaged) is one model folder
whose weights hold every member's, `members.<i>.`-prefixed."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

from search.errors import FinalizeError
from search.files import write_atomic, write_json_atomic
from trainables.config import TrialConfig
from trainables.ensemble import ModelEnsemble
from trainables.model import PolarMapNet
from trainables.weights import create_backbone

__all__ = [
    "CONFIG_FILE",
    "WEIGHTS_FILE",
    "ExportedModel",
    "load_model",
    "predict_probabilities",
    "save_model",
]

WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
CARD_FILE = "MODEL_CARD.md"
FORMAT = "polarmap-model/2"
READABLE = ("polarmap-model/1", FORMAT)  # /1: one model, no `members`

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

    @property
    def config(self) -> TrialConfig:
        return TrialConfig.from_flat(self.trial)

    @property
    def views(self) -> tuple[str, ...]:
        return tuple(self.trial["views"])


def save_model(folder: Path, model: Classifier, exported: ExportedModel, card: str) -> Path:
    """Write the model folder (each file whole or not at all); returns it."""
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    write_atomic(folder / WEIGHTS_FILE, save_safetensors(state))
    record = {"format": FORMAT, **asdict(exported), "class_names": list(exported.class_names)}
    write_json_atomic(folder / CONFIG_FILE, record)
    write_atomic(folder / CARD_FILE, card)
    return folder


def load_model(folder: str | Path) -> tuple[Classifier, ExportedModel]:
    """The model of a folder `save_model` wrote, in eval mode on the CPU.

    Raises:
        FileNotFoundError: the folder lacks its config or weights.
        ValueError: the config is not a polarmap model's, or the weights do not fit it.
    """
    folder = Path(folder)
    for name in (CONFIG_FILE, WEIGHTS_FILE):
        if not (folder / name).is_file():
            raise FileNotFoundError(f"{folder}: no {name}; is this a model folder?")
    record = json.loads((folder / CONFIG_FILE).read_text())
    if record.get("format") not in READABLE:
        raise FinalizeError(
            f"{folder / CONFIG_FILE}: format {record.get('format')!r}, not one of "
            f"{', '.join(READABLE)}"
        )
    record.pop("format")
    exported = ExportedModel(**{**record, "class_names": tuple(record["class_names"])})
    config = exported.config

    def member() -> PolarMapNet:
        backbone = create_backbone(config.backbone, pretrained=False)  # the weights follow
        return PolarMapNet(backbone, len(config.views), len(exported.class_names), config.head)

    model: Classifier = member()
    if exported.members > 1:
        model = ModelEnsemble([model] + [member() for _ in range(exported.members - 1)])
    state = load_safetensors((folder / WEIGHTS_FILE).read_bytes())
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise FinalizeError(
            f"{folder / WEIGHTS_FILE}: weights do not fit the config: {exc}"
        ) from exc
    return model.eval(), exported


def predict_probabilities(model: Classifier, x: torch.Tensor, batch: int = 64) -> torch.Tensor:
    """Class probabilities (N, classes) of maps (N, V, 3, H, W), in eval mode."""
    model.eval()
    with torch.no_grad():
        parts = [torch.softmax(model(x[s : s + batch]), dim=1) for s in range(0, len(x), batch)]
    return torch.cat(parts) if parts else torch.zeros(0, model.num_classes)
