"""Is a Grad-CAM an explanation of what the model computes? Two checks that need no ground
truth, so they run on every model:

- ROAD (Rong et al. 2022, pytorch-grad-cam's `metrics.road`): remove the most relevant p %
  of a view's pixels by the CAM (MoRF) or the least relevant (LeRF), fill them by noisy
  linear imputation, and watch the target class's probability. A faithful CAM drops it
  faster than random attributions under MoRF and slower under LeRF. Only pixels inside
  the polar map's disc are ranked or removed: the corners are background in every map, and
  ranking them would let any attribution "remove" pixels that carry nothing.
- model randomisation (Adebayo et al. 2018): randomise the head and the backbone's top
  stage (where the CAM is taken); CAMs that barely change describe the input, not what the
  model learned.

Both are costly at full resolution (one sparse solve and one backbone pass per perturbed
view; two Grad-CAM passes per member), so both run on a seeded sample of patients and
report what they used and how long they took.
"""

from __future__ import annotations

import copy
import math
import time
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
from pytorch_grad_cam.metrics.road import NoisyLinearImputer
from scipy.stats import spearmanr
from torch import nn
from torch.nn import functional as F

from search.data.segments import segment_map
from search.explanation.cams import grad_cams, target_layer
from trainables.ensemble import ModelEnsemble
from trainables.model import PolarMapNet, pool_features

__all__ = [
    "ATTRIBUTIONS",
    "CORRELATION_THRESHOLD",
    "MAX_PATIENTS",
    "ORDERS",
    "PERCENTILES",
    "RandomisationResult",
    "RoadCurve",
    "RoadResult",
    "randomisation_check",
    "removal_mask",
    "road_curves",
]

ATTRIBUTIONS = ("grad_cam", "random")
ORDERS = ("morf", "lerf")

# Per cent of the disc removed. A perfusion defect lies in one coronary territory, about a
# third of the disc (RCA and LCx 31 %, LAD 38 %): up to 30 % MoRF removes a defect that
# the CAM found and LeRF removes only what it found irrelevant. Past half the disc both
# orders have removed most of any evidence and the curves meet, while the imputer's sparse
# solve grows several-fold (about 40 ms a view at 20 %, 300 ms at 80 % on 224 px, CPU).
PERCENTILES = (10, 20, 30)

# Patients sampled by each check (the same patients for both with the same seed). With 6,
# both checks of a 3-member efficientnet_lite0 ensemble at 224 px take about 20 s on two
# CPU threads, about 16 s when the caller passes the CAMs it already has.
MAX_PATIENTS = 6

# Mean rank correlation between original and randomised CAMs at or above which the CAMs
# are flagged. Adebayo et al. found that maps which ignore the weights (Guided Backprop,
# Guided Grad-CAM) stay close to their originals when the top layers are randomised,
# while Grad-CAM's do not; a correlation of 0.5 or more means the randomised model's CAM
# still orders the disc much as the trained model's does (our threshold, not theirs).
CORRELATION_THRESHOLD = 0.5


@dataclass(frozen=True)
class RoadCurve:
    """One attribution removed in one order: the target class's probability after removing
    each percentile of each patient's view (the other views left as they were)."""

    attribution: str  # "grad_cam" or "random"
    order: str  # "morf" or "lerf"
    probabilities: np.ndarray  # (P, V, K) after removal, K percentiles
    unperturbed: np.ndarray  # (P,) before any removal

    @property
    def mean_probabilities(self) -> np.ndarray:
        """(K,) mean over patients and views at each percentile."""
        return self.probabilities.mean(axis=(0, 1))

    @property
    def patient_drops(self) -> np.ndarray:
        """(P,) each patient's drop from the unperturbed probability, mean over views and
        percentiles: what to bootstrap for an interval."""
        return self.unperturbed - self.probabilities.mean(axis=(1, 2))

    @property
    def drop(self) -> float:
        """The mean drop over patients, views and percentiles."""
        return float(self.patient_drops.mean())


@dataclass(frozen=True)
class RoadResult:
    """ROAD of Grad-CAM and of random attributions on a sample of patients."""

    percentiles: tuple[float, ...]
    patients: tuple[int, ...]  # indices into the caller's x
    curves: dict[tuple[str, str], RoadCurve]  # (attribution, order) -> curve
    seconds: float

    @property
    def num_patients(self) -> int:
        return len(self.patients)

    def drop(self, attribution: str, order: str) -> float:
        return self.curves[attribution, order].drop

    @property
    def morf_margin(self) -> float:
        """Grad-CAM's MoRF drop less random's: > 0 where the CAM's hottest pixels matter."""
        return self.drop("grad_cam", "morf") - self.drop("random", "morf")

    @property
    def lerf_margin(self) -> float:
        """Random's LeRF drop less Grad-CAM's: > 0 where the CAM's coldest pixels do not."""
        return self.drop("random", "lerf") - self.drop("grad_cam", "lerf")


@dataclass(frozen=True)
class RandomisationResult:
    """Spearman correlations between each patient's and view's CAM before and after
    re-initialising `layers`, over the disc's pixels. Where the original CAM is constant
    there is nothing to compare (NaN, left out of the mean); where only the randomised one
    is, it ranks nothing any more (0), as in `localisation`."""

    correlations: np.ndarray  # (P, V)
    patients: tuple[int, ...]  # indices into the caller's x
    layers: tuple[str, ...]  # randomised modules of each PolarMapNet
    seconds: float
    threshold: float = CORRELATION_THRESHOLD

    @property
    def num_patients(self) -> int:
        return len(self.patients)

    @property
    def compared(self) -> int:
        """Patient views whose original CAM ranks anything (the mean's sample)."""
        return int(np.isfinite(self.correlations).sum())

    @property
    def mean(self) -> float:
        """Mean correlation, NaNs left out; NaN when no original CAM ranks anything."""
        finite = self.correlations[np.isfinite(self.correlations)]
        return float(finite.mean()) if finite.size else float("nan")

    @property
    def flagged(self) -> bool:
        """The CAMs barely changed, or none could be compared: nothing shows that they
        depend on what the model learned."""
        return not self.mean < self.threshold


def road_curves(
    model: PolarMapNet | ModelEnsemble,
    x: torch.Tensor,
    cams: np.ndarray | None = None,
    targets: Sequence[int] | np.ndarray | torch.Tensor | None = None,
    percentiles: Sequence[float] = PERCENTILES,
    seed: int = 0,
    max_patients: int = MAX_PATIENTS,
) -> RoadResult:
    """ROAD MoRF and LeRF curves of the CAMs and of random attributions.

    The random attributions are uniform on the target layer's grid and upscaled
    bilinearly to the input, as Grad-CAM is: per-pixel noise would remove scattered
    pixels that the imputer restores almost exactly from their neighbours, so it would lose
    little under either order and measure the CAM's coarseness rather than its ranking.
    Ties in a ranking (a CAM's zeros) are broken at random. The model's mode and the
    caller's random state are left as they were.

    Args:
        model: the classifier, on any device; its target probability is the softmax of
            its output (for an ensemble, the mean of its members' probabilities).
        x: (N, V, 3, S, S) maps, normalized as for training.
        cams: (N, V, S, S) attributions of `targets`, hotter where more relevant; default
            the Grad-CAMs of the sampled patients (then counted in `seconds`).
        targets: (N,) the class each CAM explains; default the predicted class.
        percentiles: per cent of the disc's pixels removed, each in (0, 100).
        seed: draws the patient sample, random attributions, ties and imputation noise.
        max_patients: patients used at most; a seeded sample where x has more.
    """
    start = time.perf_counter()
    size = _check_maps(model, x)
    _check_cams(cams, x)
    checked = _check_targets(model, targets, x.shape[0])
    percentiles = tuple(float(p) for p in percentiles)
    if not percentiles or not all(0 < p < 100 for p in percentiles):
        raise ValueError(f"expected percentiles in (0, 100), got {percentiles}")
    rng = np.random.default_rng(seed)
    patients = _sample(x.shape[0], max_patients, rng)
    x = x.detach()[patients].to(device=_device(model), dtype=torch.float32)
    classes = _sampled_targets(model, x, checked, patients)
    attributions = {
        "grad_cam": np.asarray(cams)[patients]
        if cams is not None
        else grad_cams(model, x, classes),
        "random": _random_attributions(model, x.shape[:2], size, rng),
    }
    with _eval_mode(model), torch.no_grad(), torch.random.fork_rng(devices=_cuda(model)):
        torch.manual_seed(seed)
        unperturbed = _target_probabilities(torch.softmax(model(x), dim=1), classes)
        scorer = _ViewScorer(model, x)
        probabilities = _perturbed_probabilities(scorer, x, attributions, classes, percentiles, rng)
    curves = {
        (attribution, order): RoadCurve(
            attribution, order, probabilities[attribution, order], unperturbed
        )
        for attribution in ATTRIBUTIONS
        for order in ORDERS
    }
    return RoadResult(percentiles, tuple(patients.tolist()), curves, time.perf_counter() - start)


def randomisation_check(
    model: PolarMapNet | ModelEnsemble,
    x: torch.Tensor,
    targets: Sequence[int] | np.ndarray | torch.Tensor | None = None,
    seed: int = 0,
    max_patients: int = MAX_PATIENTS,
    cams: np.ndarray | None = None,
) -> RandomisationResult:
    """Grad-CAMs of a copy whose head and top backbone stage are randomised (each
    member's, for an ensemble), rank-correlated with the model's own. The model is not
    changed; the copy is seeded with `seed`, which also draws the patient sample (the same
    patients as `road_curves` with the same seed and `max_patients`).

    Args:
        model: the classifier, on any device.
        x: (N, V, 3, S, S) maps, normalized as for training.
        targets: (N,) the class explained; default the model's predicted class.
        cams: (N, V, S, S) the model's Grad-CAMs of `targets`, where the caller has them
            (saves one of the two Grad-CAM passes); default computed.
    """
    start = time.perf_counter()
    size = _check_maps(model, x)
    _check_cams(cams, x)
    checked = _check_targets(model, targets, x.shape[0])
    patients = _sample(x.shape[0], max_patients, np.random.default_rng(seed))
    x = x.detach()[patients].to(device=_device(model), dtype=torch.float32)
    classes = _sampled_targets(model, x, checked, patients)
    original = np.asarray(cams)[patients] if cams is not None else grad_cams(model, x, classes)
    randomised, layers = _randomised_copy(model, seed)
    after = grad_cams(randomised, x, classes)
    inside = segment_map(size) > 0
    correlations = np.array(
        [
            [_spearman(a[inside], b[inside]) for a, b in zip(before, later, strict=True)]
            for before, later in zip(original, after, strict=True)
        ]
    )
    return RandomisationResult(
        correlations, tuple(patients.tolist()), layers, time.perf_counter() - start
    )


def removal_mask(
    cam: np.ndarray, percentile: float, order: str, tiebreak: np.ndarray | None = None
) -> np.ndarray:
    """(S, S) True on the `percentile` % of the disc's pixels that come first in `order`
    ("morf": hottest first, "lerf": coldest first); never outside the disc.

    Args:
        cam: (S, S) attribution.
        tiebreak: one value per disc pixel (row-major) ordering equal CAM values; default
            the pixels' order.
    """
    return _removed(_ranking(cam, order, tiebreak), percentile, np.shape(cam)[0])


def _ranking(cam: np.ndarray, order: str, tiebreak: np.ndarray | None = None) -> np.ndarray:
    """Flat indices of the disc's pixels, first removed first."""
    if order not in ORDERS:
        raise ValueError(f"expected order in {ORDERS}, got {order!r}")
    cam = np.asarray(cam)
    if cam.ndim != 2 or cam.shape[0] != cam.shape[1]:
        raise ValueError(f"expected a square (S, S) cam, got shape {cam.shape}")
    inside = np.flatnonzero(segment_map(cam.shape[0]) > 0)
    values = cam.ravel()[inside].astype(np.float64)
    if tiebreak is None:
        tiebreak = np.arange(inside.size)
    return inside[np.lexsort((tiebreak, -values if order == "morf" else values))]


def _removed(ranking: np.ndarray, percentile: float, size: int) -> np.ndarray:
    """(S, S) True on the first `percentile` % of the ranking."""
    removed = np.zeros(size * size, dtype=bool)
    removed[ranking[: round(percentile / 100 * ranking.size)]] = True
    return removed.reshape(size, size)


def _check_maps(model: PolarMapNet | ModelEnsemble, x: torch.Tensor) -> int:
    """The maps' side; ValueError unless x is (N, V, 3, S, S) for the model's V views."""
    views = model.num_views
    if x.ndim != 5 or x.shape[1] != views or x.shape[2] != 3 or x.shape[3] != x.shape[4]:
        raise ValueError(f"expected (N, {views}, 3, S, S) maps, got shape {tuple(x.shape)}")
    if x.shape[0] == 0:
        raise ValueError("expected at least one patient, got none")
    return x.shape[-1]


def _check_cams(cams: np.ndarray | None, x: torch.Tensor) -> None:
    if cams is not None and np.shape(cams) != (*x.shape[:2], *x.shape[3:]):
        expected = (*x.shape[:2], *x.shape[3:])
        raise ValueError(f"expected (N, V, H, W) = {expected} cams, got {np.shape(cams)}")


def _sample(n: int, max_patients: int, rng: np.random.Generator) -> np.ndarray:
    """All n patients, or a sorted random sample of max_patients of them."""
    if max_patients < 1:
        raise ValueError(f"expected max_patients >= 1, got {max_patients}")
    if n <= max_patients:
        return np.arange(n)
    return np.sort(rng.choice(n, size=max_patients, replace=False))


def _check_targets(
    model: PolarMapNet | ModelEnsemble,
    targets: Sequence[int] | np.ndarray | torch.Tensor | None,
    patients: int,
) -> np.ndarray | None:
    """(N,) class indices, checked against the model's classes; None stays None."""
    if targets is None:
        return None
    classes = np.asarray(torch.as_tensor(targets).cpu()).reshape(-1).astype(np.int64)
    if len(classes) != patients:
        raise ValueError(f"expected {patients} targets, one per patient, got {len(classes)}")
    if ((classes < 0) | (classes >= model.num_classes)).any():
        raise ValueError(
            f"expected targets in [0, {model.num_classes}), got {sorted(set(classes.tolist()))}"
        )
    return classes


def _sampled_targets(
    model: PolarMapNet | ModelEnsemble,
    x: torch.Tensor,
    classes: np.ndarray | None,
    patients: np.ndarray,
) -> np.ndarray:
    """The sampled patients' classes, or the model's predictions on their maps `x`."""
    if classes is not None:
        return classes[patients]
    with _eval_mode(model), torch.no_grad():
        return model(x).argmax(dim=1).cpu().numpy()


def _random_attributions(
    model: PolarMapNet | ModelEnsemble,
    shape: tuple[int, int],
    size: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """(P, V, S, S) uniform noise on the target layer's grid, upscaled bilinearly."""
    net = model.members[0] if isinstance(model, ModelEnsemble) else model
    reduction = net.backbone.feature_info[-1].get("reduction", 1)
    grid = max(1, math.ceil(size / reduction))
    noise = torch.from_numpy(rng.random((*shape, grid, grid), dtype=np.float32))
    upscaled = F.interpolate(noise.flatten(0, 1)[:, None], size=(size, size), mode="bilinear")
    return upscaled.reshape(*shape, size, size).numpy()


_CPU_CHUNK = 4


class _ViewScorer:
    """Target probabilities with one view's images replaced, the other views' pooled
    features computed once: as the model's own forward, at a fraction of its cost."""

    def __init__(self, model: PolarMapNet | ModelEnsemble, x: torch.Tensor):
        self.nets = list(model.members) if isinstance(model, ModelEnsemble) else [model]
        self.pooled = [
            self._pool(net, x.flatten(0, 1)).reshape(*x.shape[:2], -1) for net in self.nets
        ]

    @staticmethod
    def _pool(net: PolarMapNet, images: torch.Tensor) -> torch.Tensor:
        # On a CPU, batches of a few images run about twice as fast per image as batches of
        # tens (efficientnet_lite0 at 224 px, two threads: the activations stay in cache).
        chunk = _CPU_CHUNK if images.device.type == "cpu" else len(images)
        pooled = [pool_features(net.backbone.forward_features(c)) for c in images.split(chunk)]
        return torch.cat(pooled)

    def __call__(self, view: int, images: torch.Tensor, patients: np.ndarray) -> torch.Tensor:
        """(B, C) class probabilities of patients[b] with images[b] as its view `view`."""
        probabilities = []
        for net, pooled in zip(self.nets, self.pooled, strict=True):
            features = pooled[torch.as_tensor(patients, device=pooled.device)].clone()
            features[:, view] = self._pool(net, images)
            probabilities.append(torch.softmax(net.head(features.flatten(1)), dim=1))
        return torch.stack(probabilities).mean(dim=0)


def _perturbed_probabilities(
    scorer: _ViewScorer,
    x: torch.Tensor,
    attributions: dict[str, np.ndarray],
    classes: np.ndarray,
    percentiles: tuple[float, ...],
    rng: np.random.Generator,
) -> dict[tuple[str, str], np.ndarray]:
    """(attribution, order) -> (P, V, K) target probabilities after removal."""
    patients, views, size = x.shape[0], x.shape[1], x.shape[-1]
    imputer = NoisyLinearImputer()
    disc_pixels = int((segment_map(size) > 0).sum())
    tiebreaks = rng.random((patients, views, disc_pixels))
    images = x.cpu()
    keys = [(a, o) for a in ATTRIBUTIONS for o in ORDERS]
    rankings = {  # the same for every percentile
        (a, o, i, view): _ranking(attributions[a][i, view], o, tiebreaks[i, view])
        for a, o in keys
        for i in range(patients)
        for view in range(views)
    }
    out = {key: np.empty((patients, views, len(percentiles))) for key in keys}
    for view in range(views):
        for k, percentile in enumerate(percentiles):
            batch = [
                _impute(
                    imputer, images[i, view], _removed(rankings[a, o, i, view], percentile, size)
                )
                for a, o in keys
                for i in range(patients)
            ]
            batch_patients = np.tile(np.arange(patients), len(keys))
            probabilities = scorer(view, torch.stack(batch).to(x.device), batch_patients)
            chosen = _target_probabilities(probabilities, np.tile(classes, len(keys)))
            for j, key in enumerate(keys):
                out[key][:, view, k] = chosen[j * patients : (j + 1) * patients]
    return out


def _impute(imputer: NoisyLinearImputer, image: torch.Tensor, removed: np.ndarray) -> torch.Tensor:
    """(3, S, S) image with the `removed` pixels filled by the imputer; others unchanged."""
    if not removed.any():
        return image.clone()
    with warnings.catch_warnings():  # the imputer hands numpy torch tensors (NumPy 2)
        warnings.filterwarnings("ignore", "__array_wrap__", DeprecationWarning)
        return imputer(image, torch.from_numpy(~removed).float())


def _target_probabilities(probabilities: torch.Tensor, classes: np.ndarray) -> np.ndarray:
    rows = torch.arange(len(classes), device=probabilities.device)
    chosen = probabilities[rows, torch.as_tensor(classes, device=probabilities.device)]
    return chosen.double().cpu().numpy()


def _randomised_copy(
    model: PolarMapNet | ModelEnsemble, seed: int
) -> tuple[PolarMapNet | ModelEnsemble, tuple[str, ...]]:
    """A deep copy with each PolarMapNet's head and target layer randomised, and the names
    of the modules randomised.

    Each learned tensor there (weights, biases, normalisation scales and shifts) is
    replaced by draws from a normal distribution with that tensor's own mean and SD:
    what it learned is gone, its scale is kept. A fresh initialisation
    (`reset_parameters`) also resets BatchNorm's running statistics, and then the top
    stage's activations saturate (EfficientNet-Lite's ReLU6 clips them all): every input
    gives the same output, the CAMs vanish, and a check that merely sees "changed" would
    pass a dead network. Running statistics describe the data, not the model, and are kept.
    """
    randomised = copy.deepcopy(model)
    nets = list(randomised.members) if isinstance(randomised, ModelEnsemble) else [randomised]
    names = {module: name for name, module in nets[0].named_modules()}
    layers = ("head", names[target_layer(nets[0])])
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for net in nets:
            for top in (net.head, target_layer(net)):
                for parameter in top.parameters():
                    values = parameter.detach().double().cpu()
                    spread = values.std().item() if values.numel() > 1 else 0.0
                    drawn = torch.randn(values.shape, generator=generator, dtype=torch.float64)
                    parameter.copy_(values.mean() + spread * drawn)
    return randomised, layers


def _spearman(original: np.ndarray, randomised: np.ndarray) -> float:
    if np.ptp(original) == 0:
        return float("nan")
    if np.ptp(randomised) == 0:
        return 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(spearmanr(original, randomised).statistic)


def _device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


def _cuda(model: nn.Module) -> list[int]:
    """The CUDA devices holding the model, whose random state is kept for the caller."""
    return sorted({p.device.index or 0 for p in model.parameters() if p.device.type == "cuda"})


@contextmanager
def _eval_mode(model: nn.Module) -> Iterator[None]:
    """Eval mode inside, every module's own mode restored after."""
    modes = {module: module.training for module in model.modules()}
    model.eval()
    try:
        yield
    finally:
        for module, training in modes.items():
            module.training = training
