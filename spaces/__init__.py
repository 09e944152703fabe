"""Search spaces: backbones, input modes and hyperparameter ranges, declared in Python and
drawn define-by-run, selected by name (`polarmap spaces list`)."""

from spaces.presets import PRESETS
from spaces.space import Choice, FloatRange, IntRange, Ranges, SearchSpace, suggest_config

__all__ = [
    "PRESETS",
    "Choice",
    "FloatRange",
    "IntRange",
    "Ranges",
    "SearchSpace",
    "get_space",
    "suggest_config",
]


def get_space(name: str) -> SearchSpace:
    """The preset called `name`.

    Raises:
        KeyError: no such space; the message lists the known ones.
    """
    try:
        return PRESETS[name]
    except KeyError:
        raise KeyError(
            f"unknown search space {name!r}; known: {', '.join(sorted(PRESETS))}"
        ) from None
