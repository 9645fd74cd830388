"""The inline SVG time series: valid SVG, threshold lines, phase markers, breaks for missing
values, and "no data" instead of an empty axis that would read as zero."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from xml.etree import ElementTree

from pytest_predeploy.core.timechart import MAX_SERIES, Line, time_series_svg

NS = "{http://www.w3.org/2000/svg}"
T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def _at(seconds: int) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_series_threshold_and_phase_markers_are_drawn() -> None:
    line = Line("api", [(_at(0), 0.01), (_at(10), 0.02), (_at(20), None), (_at(30), 0.2), (_at(40), 0.3)])
    svg = ElementTree.fromstring(
        time_series_svg("error <ratio>", [line], thresholds=[("above", 0.05)], markers=[("before deploy", _at(5)), ("after smoke", _at(40))])
    )
    polylines = svg.findall(f"{NS}polyline")
    assert len(polylines) == 2  # the missing value breaks the line instead of bridging it
    assert len(svg.findall(f"{NS}line[@class='threshold']")) == 1
    assert len(svg.findall(f"{NS}line[@class='marker']")) == 2
    texts = [t.text for t in svg.iter(f"{NS}text")]
    assert "error <ratio>" in texts and "before deploy" in texts and "after smoke" in texts and "api" in texts


def test_without_any_value_the_chart_says_no_data() -> None:
    svg = ElementTree.fromstring(time_series_svg("q", [Line("api", [(_at(0), None)])], thresholds=[("above", 1.0)]))
    assert "no data" in [t.text for t in svg.iter(f"{NS}text")]
    assert svg.findall(f"{NS}polyline") == []


def test_many_series_are_capped_with_a_note() -> None:
    lines = [Line(f"s{i}", [(_at(0), float(i)), (_at(1), float(i))]) for i in range(MAX_SERIES + 3)]
    svg = ElementTree.fromstring(time_series_svg("q", lines))
    assert len(svg.findall(f"{NS}polyline")) == MAX_SERIES
    assert any("of 11 series shown" in (t.text or "") for t in svg.iter(f"{NS}text"))
