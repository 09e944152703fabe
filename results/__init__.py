"""Results: the searches, trials and epochs tables in Parquet, for analysts with any tool.
Filled by the results work."""

__all__: list[str] = []
