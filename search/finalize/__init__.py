"""Finalize a search's winners: select them (`winners`, `greedy` for the ensemble across
trials), retrain each over seeds by the retrainer of its kind (`retrain`), test it once on
the held-out split (`held_out`, `winner`), compare the models with each other and a
baseline (`baseline`, `comparisons`), write the table rows (`rows`), and orchestrate it
all (`pipeline`; `nested` for a nested run's outer folds). Inference, explanation and
reporting are packages of their own below it."""

__all__: list[str] = []
