"""The QuickSight dashboard's definition: one sheet, one visual per question about the photos.

Plain CloudFormation (``AWS::QuickSight::Dashboard`` ``Definition``), built from a table of
visuals so that adding one is one line. Column names are those of the datasets built in
:mod:`stacks.quicksight`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

TOP_N = 20
# QuickSight's grid is 36 columns wide: two visuals side by side.
HALF_WIDTH = 18
ROW_SPAN = 12


@dataclass(frozen=True)
class Visual:
    """One chart: its id and title, the dataset, the category column and how it is counted.

    ``count`` is ``COUNT``/``DISTINCT_COUNT`` of ``value`` (a categorical column) or ``SUM``
    of a numeric one; ``by_month`` makes a line chart over a date column.
    """

    visual_id: str
    title: str
    data_set: str
    category: str
    value: str
    count: str
    by_month: bool = False


VISUALS = (
    Visual("top-labels", "Top labels (images)", "labels", "label", "key", "DISTINCT_COUNT"),
    Visual("creators", "Images per creator", "images", "creator", "key", "COUNT"),
    Visual(
        "over-time", "Images per month taken", "images", "datetime_original", "key", "COUNT", True
    ),
    Visual("cameras", "Cameras (model)", "images", "camera_model", "key", "COUNT"),
    Visual("quality", "Quality flags", "quality", "flag", "images", "SUM"),
    Visual("quarantine", "Quarantine reasons", "quarantine", "reason", "files", "SUM"),
)


def _column(visual: Visual, name: str) -> dict[str, str]:
    return {"DataSetIdentifier": visual.data_set, "ColumnName": name}


def _measure(visual: Visual) -> dict[str, Any]:
    field = {"FieldId": f"{visual.visual_id}-value", "Column": _column(visual, visual.value)}
    if visual.count == "SUM":
        aggregation = {"SimpleNumericalAggregation": "SUM"}
        return {"NumericalMeasureField": {**field, "AggregationFunction": aggregation}}
    return {"CategoricalMeasureField": {**field, "AggregationFunction": visual.count}}


def _title(visual: Visual) -> dict[str, Any]:
    return {"Visibility": "VISIBLE", "FormatText": {"PlainText": visual.title}}


def _line_chart(visual: Visual) -> dict[str, Any]:
    category = {
        "DateDimensionField": {
            "FieldId": f"{visual.visual_id}-category",
            "Column": _column(visual, visual.category),
            "DateGranularity": "MONTH",
        }
    }
    wells = {
        "LineChartAggregatedFieldWells": {"Category": [category], "Values": [_measure(visual)]}
    }
    return {
        "LineChartVisual": {
            "VisualId": visual.visual_id,
            "Title": _title(visual),
            "ChartConfiguration": {"FieldWells": wells},
        }
    }


def _bar_chart(visual: Visual) -> dict[str, Any]:
    category = {
        "CategoricalDimensionField": {
            "FieldId": f"{visual.visual_id}-category",
            "Column": _column(visual, visual.category),
        }
    }
    wells = {"BarChartAggregatedFieldWells": {"Category": [category], "Values": [_measure(visual)]}}
    sort = {
        "CategorySort": [
            {"FieldSort": {"FieldId": f"{visual.visual_id}-value", "Direction": "DESC"}}
        ],
        "CategoryItemsLimit": {"ItemsLimit": TOP_N, "OtherCategories": "EXCLUDE"},
    }
    return {
        "BarChartVisual": {
            "VisualId": visual.visual_id,
            "Title": _title(visual),
            "ChartConfiguration": {
                "FieldWells": wells,
                "Orientation": "HORIZONTAL",
                "SortConfiguration": sort,
            },
        }
    }


def dashboard_definition(data_set_arns: dict[str, str]) -> dict[str, Any]:
    """The ``Definition`` of the dashboard, given each dataset identifier's ARN."""
    used = {visual.data_set for visual in VISUALS}
    missing = used - set(data_set_arns)
    if missing:
        raise KeyError(f"no dataset for {sorted(missing)}")
    return {
        "DataSetIdentifierDeclarations": [
            {"Identifier": name, "DataSetArn": arn}
            for name, arn in data_set_arns.items()
            if name in used
        ],
        "Sheets": [
            {
                "SheetId": "collection",
                "Name": "The collection",
                "Visuals": [
                    _line_chart(visual) if visual.by_month else _bar_chart(visual)
                    for visual in VISUALS
                ],
                "Layouts": [
                    {
                        "Configuration": {
                            "GridLayout": {
                                "Elements": [
                                    {
                                        "ElementId": visual.visual_id,
                                        "ElementType": "VISUAL",
                                        "ColumnSpan": HALF_WIDTH,
                                        "RowSpan": ROW_SPAN,
                                    }
                                    for visual in VISUALS
                                ]
                            }
                        }
                    }
                ],
            }
        ],
    }
