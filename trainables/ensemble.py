"""Several PolarMapNets as one classifier that averages their class probabilities: the
fold models of a cross-validated winner. Its output is the log of the mean probability,
so a softmax of it (as for any PolarMapNet's logits) gives the mean probability back."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from trainables.model import PolarMapNet

__all__ = ["ModelEnsemble"]


class ModelEnsemble(nn.Module):
    """Members of one architecture, views and class set, weighted equally."""

    def __init__(self, members: Sequence[PolarMapNet]):
        super().__init__()
        if not members:
            raise ValueError("an ensemble needs at least one member")
        shapes = {(m.num_views, m.num_classes) for m in members}
        if len(shapes) != 1:
            raise ValueError(f"ensemble members differ in views or classes: {sorted(shapes)}")
        self.members = nn.ModuleList(members)
        self.num_views, self.num_classes = shapes.pop()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        probabilities = torch.stack([torch.softmax(m(x), dim=1) for m in self.members])
        return torch.log(probabilities.mean(dim=0).clamp_min(torch.finfo(x.dtype).tiny))
