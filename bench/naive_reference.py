"""The naive reference: the protocol run as the seeds ran it, and as a plain Ray Tune
script would. Kept unchanged once written, so later figures compare with earlier ones.

Every epoch decodes the cleaned map files through a DataLoader with torchvision
transforms, runs the whole model forward on every batch (the frozen backbone included),
in fp32, and back-propagates through the trainable part only. The best epoch is kept the
way Keras' ModelCheckpoint(save_best_only=True) keeps it: the whole model saved to disk.
Architecture, unfreezing and learning rates are the project's, so both paths train the
same model.
"""

from __future__ import annotations

import copy
import tempfile
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms

from trainables.config import TrialConfig
from trainables.model import PolarMapNet
from trainables.weights import create_backbone

__all__ = ["MapFiles", "run_naive_trial"]


class MapFiles(Dataset):
    """One item per patient: its view images decoded from files and transformed."""

    def __init__(self, paths: list[list[Path]], labels: list[int], size: int, mean, std):
        self.paths, self.labels = paths, labels
        self.transform = transforms.Compose(
            [
                transforms.Resize((size, size)),
                transforms.ToTensor(),
                transforms.Normalize(mean, std),
            ]
        )

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int):
        views = [self.transform(Image.open(p).convert("RGB")) for p in self.paths[index]]
        return torch.stack(views), self.labels[index]


def run_naive_trial(
    config: TrialConfig, train: MapFiles, val: MapFiles, num_classes: int
) -> list[dict[str, float]]:
    """Warm-up then fine-tune; returns one record per epoch (losses, balanced accuracy)."""
    torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    model = PolarMapNet(
        create_backbone(config.backbone, config.pretrained, config.weights),
        len(config.views),
        num_classes,
        config.head,
    )
    train_loader = DataLoader(train, batch_size=config.batch_size, shuffle=True)
    val_loader = DataLoader(val, batch_size=config.batch_size)
    history: list[dict[str, float]] = []
    with tempfile.TemporaryDirectory() as folder:
        best_path = Path(folder) / "best.pt"
        best = -np.inf
        for stage, epochs, lr in (
            ("warmup", config.warmup_epochs, config.warmup_lr),
            ("finetune", config.finetune_epochs, config.finetune_lr),
        ):
            if stage == "finetune":
                model.load_state_dict(torch.load(best_path, weights_only=True))
                model.unfreeze_top(config.unfreeze, config.rule)
            optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr)
            for _ in range(epochs):
                model.train()
                total = 0.0
                for x, y in train_loader:
                    loss = F.cross_entropy(model(x), y)
                    optimizer.zero_grad()
                    loss.backward()
                    optimizer.step()
                    total += loss.item() * len(y)
                model.eval()
                predictions, labels, val_loss = [], [], 0.0
                with torch.no_grad():
                    for x, y in val_loader:
                        logits = model(x)
                        val_loss += F.cross_entropy(logits, y, reduction="sum").item()
                        predictions.append(logits.argmax(1))
                        labels.append(y)
                predicted, truth = torch.cat(predictions), torch.cat(labels)
                recalls = [
                    (predicted[truth == c] == c).float().mean().item()
                    for c in range(num_classes)
                    if (truth == c).any()
                ]
                score = float(np.mean(recalls))
                if score > best:
                    best = score
                    torch.save(copy.deepcopy(model.state_dict()), best_path)
                history.append(
                    {
                        "stage": stage,
                        "train_loss": total / len(train),
                        "val_loss": val_loss / len(val),
                        "val_balanced_accuracy": score,
                    }
                )
        model.load_state_dict(torch.load(best_path, weights_only=True))
    return history
