"""Charts of the analyze job's result tables: one function per table, ``DataFrame -> Figure``.

Figures are built with the object-oriented API on an Agg canvas (no pyplot state), so they
render the same in the report step, in tests and in a notebook. Names come from user files:
they are truncated with an ellipsis and ``$`` is escaped so matplotlib never reads mathtext.
"""

from __future__ import annotations

import io
import itertools
import math
from collections.abc import Callable, Iterable, Sequence

import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from analysis.titles import TITLES, human_bytes

MAX_NAME_CHARS = 40
MAX_BARS = 20
BAR_COLOR = sns.color_palette("deep")[0]

Chart = Callable[[pd.DataFrame], Figure]


def short_name(value: object, limit: int = MAX_NAME_CHARS) -> str:
    """A label safe to draw: one line, at most ``limit`` characters, no mathtext."""
    missing = value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA
    text = "" if missing else str(value)
    text = " ".join(text.split()) or "(empty)"
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return text.replace("$", r"\$")


def new_figure(width: float = 8.0, height: float = 4.5) -> tuple[Figure, Axes]:
    """A figure on an Agg canvas with constrained (tight) layout and a seaborn style."""
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    with sns.axes_style("whitegrid"):
        ax = fig.add_subplot()
    return fig, ax


def no_data(title: str) -> Figure:
    """A small figure that says there is nothing to show."""
    fig, ax = new_figure(6.0, 2.0)
    ax.set_title(title)
    ax.text(0.5, 0.5, "no data", ha="center", va="center", fontsize=14, color="gray")
    ax.set_axis_off()
    return fig


def barh_chart(
    names: Iterable[object],
    values: Iterable[float],
    title: str,
    xlabel: str,
    annotations: Sequence[str] | None = None,
) -> Figure:
    """Horizontal bars, largest first, for named things (labels, creators, cameras...)."""
    names, values = list(names)[:MAX_BARS], [float(v) for v in list(values)[:MAX_BARS]]
    if not values:
        return no_data(title)
    fig, ax = new_figure(8.0, max(2.2, 0.38 * len(values) + 1.3))
    # Positions, not names, on the y axis: two long names truncated alike stay two bars.
    positions = list(range(len(values)))
    bars = ax.barh(positions, values, color=BAR_COLOR)
    ax.set_yticks(positions, [short_name(n) for n in names])
    ax.invert_yaxis()
    labels = annotations[:MAX_BARS] if annotations else [f"{v:,.0f}" for v in values]
    ax.bar_label(bars, labels=list(labels), padding=3, fontsize=8)
    ax.set_xlim(0, max(values) * 1.25 or 1)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set(title=title, xlabel=xlabel)
    sns.despine(ax=ax, left=True)
    return fig


def column_chart(
    frame: pd.DataFrame, x: str, y: str, title: str, xlabel: str, ylabel: str
) -> Figure:
    """Vertical bars in the table's order, for bins and months."""
    if frame.empty:
        return no_data(title)
    data = pd.DataFrame({x: [short_name(v, 16) for v in frame[x]], y: frame[y].astype(float)})
    fig, ax = new_figure(max(6.0, 0.45 * len(data) + 2.0), 4.2)
    sns.barplot(data=data, x=x, y=y, order=list(data[x]), color=BAR_COLOR, ax=ax)
    for container in ax.containers:
        ax.bar_label(container, fmt="{:,.0f}", padding=2, fontsize=8)  # type: ignore[arg-type]
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    ax.set_ylim(0, float(data[y].max()) * 1.15 or 1)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    _unclutter_x_labels(fig, ax)
    sns.despine(ax=ax)
    return fig


def _unclutter_x_labels(fig: Figure, ax: Axes) -> None:
    """Turn the x labels when, drawn level, any two would touch (measured, not guessed)."""
    fig.canvas.draw()
    boxes = [t.get_window_extent() for t in ax.get_xticklabels() if t.get_text()]
    gap = 4.0  # pixels of space needed between two labels
    if any(left.x1 + gap > right.x0 for left, right in itertools.pairwise(boxes)):
        ax.tick_params(axis="x", labelrotation=90)


def bins_chart(frame: pd.DataFrame, title: str, xlabel: str) -> Figure:
    """Horizontal bars in the table's (bin) order: bin names never collide, however long."""
    return barh_chart(frame.get("bin", []), frame.get("images", []), title, xlabel)


def top_labels_chart(frame: pd.DataFrame) -> Figure:
    notes = [
        f"{n:,} · {c:.0f}%"
        for n, c in zip(frame.get("images", []), frame.get("mean_confidence", []), strict=True)
    ]
    return barh_chart(
        frame.get("label", []),
        frame.get("images", []),
        TITLES["top_labels"],
        "images (label counted once per image) · mean confidence",
        notes,
    )


def label_parents_chart(frame: pd.DataFrame) -> Figure:
    notes = [
        f"{n:,} · {k:,} label{'s' if k != 1 else ''} below"
        for n, k in zip(frame.get("images", []), frame.get("labels_below", []), strict=True)
    ]
    return barh_chart(
        frame.get("parent", []),
        frame.get("images", []),
        TITLES["label_parents"],
        "images under the top-level label · labels below it",
        notes,
    )


def label_categories_chart(frame: pd.DataFrame) -> Figure:
    return barh_chart(
        frame.get("category", []), frame.get("images", []), TITLES["label_categories"], "images"
    )


def label_pairs_chart(frame: pd.DataFrame) -> Figure:
    names = [
        f"{a} + {b}"
        for a, b in zip(frame.get("label_a", []), frame.get("label_b", []), strict=True)
    ]
    return barh_chart(names, frame.get("images", []), TITLES["label_pairs"], "images with both")


def creators_chart(frame: pd.DataFrame) -> Figure:
    notes = [
        f"{n:,} · {human_bytes(b)}"
        for n, b in zip(frame.get("images", []), frame.get("bytes", []), strict=True)
    ]
    return barh_chart(
        frame.get("creator", []),
        frame.get("images", []),
        TITLES["creators"],
        "images · bytes",
        notes,
    )


def images_over_time_chart(frame: pd.DataFrame) -> Figure:
    return column_chart(
        frame, "month", "images", TITLES["images_over_time"], "month (EXIF date taken)", "images"
    )


def cameras_chart(frame: pd.DataFrame) -> Figure:
    names = [
        f"{make} {model}"
        for make, model in zip(frame.get("make", []), frame.get("model", []), strict=True)
    ]
    return barh_chart(names, frame.get("images", []), TITLES["cameras"], "images")


def formats_chart(frame: pd.DataFrame) -> Figure:
    notes = [
        f"{n:,} · {human_bytes(b)}"
        for n, b in zip(frame.get("images", []), frame.get("bytes", []), strict=True)
    ]
    return barh_chart(
        frame.get("format", []), frame.get("images", []), TITLES["formats"], "images · bytes", notes
    )


def megapixels_chart(frame: pd.DataFrame) -> Figure:
    return bins_chart(frame, TITLES["megapixels"], "images")


def sharpness_chart(frame: pd.DataFrame) -> Figure:
    return column_chart(
        frame,
        "bin",
        "images",
        TITLES["sharpness"],
        "variance of the Laplacian (higher is sharper)",
        "images",
    )


def brightness_chart(frame: pd.DataFrame) -> Figure:
    return column_chart(
        frame, "bin", "images", TITLES["brightness"], "mean luma (0 black - 255 white)", "images"
    )


def quality_chart(frame: pd.DataFrame) -> Figure:
    names = [
        f"{f} ({r})" for f, r in zip(frame.get("flag", []), frame.get("rule", []), strict=True)
    ]
    return barh_chart(names, frame.get("images", []), TITLES["quality"], "images")


def exact_duplicates_chart(frame: pd.DataFrame) -> Figure:
    if frame.empty:
        return no_data(TITLES["exact_duplicates"])
    groups = (
        frame.groupby("checksum", sort=False)
        .agg(first_key=("key", "min"), copies=("copies", "max"))
        .sort_values(["copies", "first_key"], ascending=[False, True])
    )
    names = [f"{k} (+{c - 1})" for k, c in zip(groups["first_key"], groups["copies"], strict=True)]
    return barh_chart(names, groups["copies"], TITLES["exact_duplicates"], "copies")


def near_duplicates_chart(frame: pd.DataFrame) -> Figure:
    if frame.empty:
        return no_data(TITLES["near_duplicates"])
    counts = frame.groupby("distance").size().rename("images").reset_index()
    return column_chart(
        counts,
        "distance",
        "images",
        TITLES["near_duplicates"],
        "pHash Hamming distance to the closest (bits)",
        "images",
    )


def quarantine_reasons_chart(frame: pd.DataFrame) -> Figure:
    return barh_chart(
        frame.get("reason", []),
        frame.get("objects", []),
        TITLES["quarantine_reasons"],
        "ingest objects",
    )


# The charted tables, in report order (the order of TITLES).
CHARTS: dict[str, Chart] = {
    "top_labels": top_labels_chart,
    "label_parents": label_parents_chart,
    "label_categories": label_categories_chart,
    "label_pairs": label_pairs_chart,
    "creators": creators_chart,
    "images_over_time": images_over_time_chart,
    "cameras": cameras_chart,
    "formats": formats_chart,
    "megapixels": megapixels_chart,
    "sharpness": sharpness_chart,
    "brightness": brightness_chart,
    "quality": quality_chart,
    "exact_duplicates": exact_duplicates_chart,
    "near_duplicates": near_duplicates_chart,
    "quarantine_reasons": quarantine_reasons_chart,
}


def chart(name: str, frame: pd.DataFrame | None) -> Figure:
    """The chart of one result table (a missing table draws as "no data")."""
    draw = CHARTS[name]
    return draw(frame if frame is not None else pd.DataFrame())


def figure_png(fig: Figure, dpi: int = 110) -> bytes:
    """The figure as PNG bytes."""
    sink = io.BytesIO()
    fig.savefig(sink, format="png", dpi=dpi)
    return sink.getvalue()
