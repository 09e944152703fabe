"""Grad-CAM of a PolarMapNet, one map per patient and per view; of a fold ensemble, the
mean of its members' CAMs for the class the ensemble predicts.

The CAM is taken at the backbone's last feature stage (timm's `feature_info[-1]`), as in
the seed papers. pytorch-grad-cam expects the target layer to see the model's input batch;
PolarMapNet folds its views into the backbone's batch, so each view gets its own pass
through a one-view wrapper in which the other views' features are fixed constants.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from pytorch_grad_cam import GradCAM
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
from torch import nn

from trainables.ensemble import ModelEnsemble
from trainables.model import PolarMapNet, pool_features

__all__ = ["grad_cams", "target_layer"]


def target_layer(model: PolarMapNet) -> nn.Module:
    """The backbone's last feature stage (e.g. `layer4` of a ResNet), where CAMs are taken."""
    name = model.backbone.feature_info[-1]["module"]
    return model.backbone.get_submodule(name)


class _OneView(nn.Module):
    """PolarMapNet as a function of one view's images, the other views held fixed.

    Runs the backbone once per call, so the target layer's activations have the batch of
    the input, as pytorch-grad-cam assumes.
    """

    def __init__(self, model: PolarMapNet, view: int, other_features: torch.Tensor):
        super().__init__()
        self.model = model
        self.view = view
        self.other_features = other_features  # (N, V - 1, F), views in order, `view` left out

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        # The input carries the graph: with every parameter frozen, nothing else would give
        # the target layer's activations a grad_fn, and Grad-CAM would get no gradients.
        images = images.detach().clone().requires_grad_(True)
        pooled = pool_features(self.model.backbone.forward_features(images))
        before, after = self.other_features[:, : self.view], self.other_features[:, self.view :]
        features = torch.cat([before, pooled[:, None], after], dim=1)
        return self.model.head(features.flatten(1))


def grad_cams(
    model: PolarMapNet | ModelEnsemble,
    x: torch.Tensor,
    targets: Sequence[int] | np.ndarray | torch.Tensor | None = None,
) -> np.ndarray:
    """Grad-CAM of every patient and view at the input resolution.

    The model is left as it was: same weights, gradients, `requires_grad` flags and
    train/eval modes (CAMs are taken in eval mode, so BatchNorm and dropout behave as at
    test time).

    Args:
        model: the classifier, on any device; `x` is moved to it.
        x: (N, V, 3, H, W) float maps, normalized as for training.
        targets: the class explained for each patient, (N,); default the predicted class.

    Returns:
        (N, V, H, W) float32 in [0, 1], each CAM scaled to its own maximum (all zeros where
        no region argues for the target class); for an ensemble, the mean of its members'
        CAMs so scaled.
    """
    if isinstance(model, ModelEnsemble):
        if targets is None:
            device = next(model.parameters()).device
            with torch.no_grad():
                model.eval()
                targets = model(x.to(device)).argmax(dim=1).cpu()
        cams = [grad_cams(member, x, targets) for member in model.members]
        return np.mean(cams, axis=0).astype(np.float32, copy=False)
    if x.ndim != 5 or x.shape[1] != model.num_views:
        raise ValueError(
            f"expected (N, {model.num_views}, 3, H, W) maps, got shape {tuple(x.shape)}"
        )
    device = next(model.parameters()).device
    x = x.detach().to(device=device, dtype=torch.float32)
    views = x.shape[1]

    modes = {module: module.training for module in model.modules()}
    flags = {param: param.requires_grad for param in model.parameters()}
    grads = {param: param.grad for param in model.parameters()}
    try:
        model.eval()
        model.requires_grad_(False)  # gradients reach the target layer through the input
        classes = _target_classes(model, x, targets)
        cams = [_view_cams(model, x, view, classes) for view in range(views)]
    finally:
        for param, flag in flags.items():
            param.requires_grad_(flag)
            param.grad = grads[param]
        for module, training in modes.items():
            module.training = training
    return np.stack(cams, axis=1).astype(np.float32, copy=False)


def _target_classes(
    model: PolarMapNet,
    x: torch.Tensor,
    targets: Sequence[int] | np.ndarray | torch.Tensor | None,
) -> list[int]:
    if targets is None:
        with torch.no_grad():
            return model(x).argmax(dim=1).tolist()
    classes = [int(t) for t in np.asarray(torch.as_tensor(targets).cpu()).reshape(-1)]
    if len(classes) != x.shape[0]:
        raise ValueError(f"{len(classes)} targets for {x.shape[0]} patients")
    num_classes = model.num_classes
    if not all(0 <= c < num_classes for c in classes):
        raise ValueError(f"targets {classes} outside the model's {num_classes} classes")
    return classes


def _view_cams(model: PolarMapNet, x: torch.Tensor, view: int, classes: list[int]) -> np.ndarray:
    """(N, H, W) CAMs of one view."""
    others = [v for v in range(x.shape[1]) if v != view]
    # Before GradCAM exists, so its hooks see only the one backbone pass of `view`.
    with torch.no_grad():
        if others:
            images = x[:, others].flatten(0, 1)
            pooled = pool_features(model.backbone.forward_features(images))
            other_features = pooled.reshape(x.shape[0], len(others), -1)
        else:
            other_features = x.new_zeros(x.shape[0], 0, model.num_features)
    cam = GradCAM(model=_OneView(model, view, other_features), target_layers=[target_layer(model)])
    try:  # not GradCAM's context manager: its __exit__ swallows IndexError
        with torch.enable_grad():
            return cam(
                input_tensor=x[:, view], targets=[ClassifierOutputTarget(c) for c in classes]
            )
    finally:
        cam.activations_and_grads.release()
