"""polarmap-search: hyperparameter and backbone search for polar-map classifiers.

The `polarmap` command lives in `search.cli`; the data layer (manifests, the check,
patient-level splits) in `search.data`.
"""

__all__: list[str] = []
