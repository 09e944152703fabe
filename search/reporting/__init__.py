"""Reporting: what finalize shows a reader, from the records of `search.records`. The HTML
report (`report`) and a nested run's (`nested_report`), the TRIPOD+AI / CLAIM checklist
(`checklist`), the tables of figures (`tables`), the evaluation plots (`plots`), the model
card (`model_card`) and the comparisons in words (`comparison_text`). It imports no
training code (a contract in pyproject.toml checks that)."""

__all__: list[str] = []
