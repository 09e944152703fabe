"""Explanation: where a finalized model looked. Grad-CAM through the shared backbone
(`cams`), the AHA 17-segment model and the coronary territories (`segments`), overlay
panels (`overlays`), and a model's CAMs over its test patients summarized and checked
against the synthetic ground truth (`explain`). Explanation checks added later belong
here too."""

__all__: list[str] = []
