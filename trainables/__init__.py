"""Trainables: the two-stage transfer-learning protocol (warm-up, then fine-tune) as a plain
function taking a `report` callable, and its Ray Tune adapter. Filled by the trial work."""

__all__: list[str] = []
