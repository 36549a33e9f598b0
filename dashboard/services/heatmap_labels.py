"""Heatmap methods as the pages name them, with what the localisation benchmark says of each."""

from __future__ import annotations

from jobspec import DEFAULT_HEATMAP_METHOD, HEATMAP_METHOD_NAMES

DEFAULT_METHOD: str = DEFAULT_HEATMAP_METHOD.value
# Every method by name, the default first (the order the pickers offer them).
METHOD_LABELS: dict[str, str] = {
    method.value: name
    for method, name in sorted(
        HEATMAP_METHOD_NAMES.items(), key=lambda item: item[0] != DEFAULT_HEATMAP_METHOD
    )
}
METHODS_HELP = (
    "How each heatmap is computed. On defects planted into normal solar cells, LayerCAM over "
    "every stage (the default) put its peak on the defect in 97.6 % of images, Grad-CAM over "
    "every stage in 85.2 %, the input gradient in 49.5 %, Grad-CAM on the last stage in 26.6 % "
    "(bench/results/heatmaps.md). Each method adds about 0.1 s per image on a CPU."
)


def method_label(method: str) -> str:
    """A method's name for people, marked when it is the default; unknown names as they are."""
    name = METHOD_LABELS.get(method, method)
    return f"{name} (default)" if method == DEFAULT_METHOD else name
