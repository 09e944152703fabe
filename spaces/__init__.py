"""Search spaces: define-by-run declarations of backbones, input modes and hyperparameter
ranges, selected by name. Filled by the search work."""

__all__: list[str] = []
