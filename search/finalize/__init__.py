"""Finalize a search's winners: retrain each with its chosen settings over several seeds,
test it once on the held-out split, export it, and show where it looked (class activation
maps on the 17-segment model)."""

__all__: list[str] = []
