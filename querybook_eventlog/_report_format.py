"""The report as text tables, JSON, CSV or one self-contained HTML page.

The HTML page needs nothing else: styles inline, charts as inline SVG with
each bar's number written next to it, no script, no network.
"""

from __future__ import annotations

import csv
import html
import io
import json
from typing import Any, Dict, List, Optional

from ._report import RECOMMENDED_INDEX_DDL, SECTION_ORDER

TEXT_SECTIONS = ["search", "feature_use", "home_page", "events_per_day", "top_routes",
                 "active_users", "feature_use_per_user"]
SERIES_COLOURS = ["#3b6fb6", "#e07b39", "#4f9d69", "#9b59b6", "#c0392b"]
EVENT_TYPES = ["API", "WEBSOCKET", "VIEW", "CLICK"]


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value).replace("\n", " ").replace("\t", " ")


def _table_text(section: dict, max_width: int = 48) -> List[str]:
    columns = section["columns"]
    cells = [[_cell(value) for value in row] for row in section["rows"]]
    cells = [[text if len(text) <= max_width else text[:max_width - 1] + "…" for text in row]
             for row in cells]
    widths = [max([len(name)] + [len(row[i]) for row in cells]) for i, name in enumerate(columns)]
    numeric = [bool(section["rows"]) and all(isinstance(row[i], (int, float)) or row[i] is None
                                             for row in section["rows"])
               for i in range(len(columns))]

    def line(values):
        return "  ".join(value.rjust(width) if is_number else value.ljust(width)
                         for value, width, is_number in zip(values, widths, numeric)).rstrip()

    out = [line(columns), line(["-" * width for width in widths])]
    out += [line(row) for row in cells] or ["(none)"]
    return out


def to_text(report: Dict[str, Any], sections: Optional[List[str]] = None) -> str:
    out = [f"event_log report: table {report['table']}, {report['since']} to {report['until']} (UTC)"
           + ("; JSON fields from the generated columns" if report.get("generated_columns") else "")]
    for note in report["notes"]:
        out.append(f"note: {note}")
    present = report["sections"]
    everything = len(present) == len(SECTION_ORDER)  # else the caller chose the sections
    for name in sections or (TEXT_SECTIONS if everything else list(present)):
        section = present[name]
        out += ["", f"== {section['title']}"] + _table_text(section)
    return "\n".join(out) + "\n"


def to_json(report: Dict[str, Any], sections: Optional[List[str]] = None) -> str:
    if sections:
        report = {**report, "sections": {name: report["sections"][name] for name in sections}}
    return json.dumps(report, indent=2, ensure_ascii=False) + "\n"


def to_csv(report: Dict[str, Any], sections: Optional[List[str]] = None) -> str:
    """One section: plain CSV.  Several: blocks separated by a blank line,
    each starting with a header row whose first cell is "section"."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    names = sections or list(report["sections"])
    for index, name in enumerate(names):
        section = report["sections"][name]
        if len(names) == 1:
            writer.writerow(section["columns"])
            writer.writerows(section["rows"])
            continue
        if index:
            buffer.write("\n")
        writer.writerow(["section"] + section["columns"])
        writer.writerows([name] + row for row in section["rows"])
    return buffer.getvalue()


# ---- HTML --------------------------------------------------------------------

def _bars_horizontal(name: str, labels: List[str], series: Dict[str, List[float]]) -> str:
    """Grouped horizontal bars: one group per label, one bar per series."""
    bar, gap, label_width, plot_width = 14, 8, 300, 460
    per_group = bar * len(series) + gap
    height = max(len(labels), 1) * per_group + 30
    peak = max([value for values in series.values() for value in values] + [1])
    parts = [f'<svg class="chart" data-section="{name}" xmlns="http://www.w3.org/2000/svg" '
             f'width="{label_width + plot_width + 80}" height="{height}" role="img">']
    for index, label in enumerate(labels):
        top = index * per_group + 20
        parts.append(f'<text class="label" x="{label_width - 6}" y="{top + bar - 3}" '
                     f'text-anchor="end">{html.escape(label)}</text>')
        for offset, (series_name, values) in enumerate(series.items()):
            value = values[index]
            width = max(value / peak * plot_width, 1 if value else 0)
            y = top + offset * bar
            colour = SERIES_COLOURS[offset % len(SERIES_COLOURS)]
            parts.append(
                f'<rect x="{label_width}" y="{y}" width="{width:.1f}" height="{bar - 2}" '
                f'fill="{colour}"><title>{html.escape(label)} {series_name}: {_cell(value)}</title></rect>'
                f'<text class="value" data-series="{series_name}" x="{label_width + width + 4:.1f}" '
                f'y="{y + bar - 4}">{_cell(value)}</text>')
    parts.append(_legend(list(series), label_width, 12))
    parts.append("</svg>")
    return "".join(parts)


def _bars_per_day(name: str, days: List[str], series: Dict[str, List[float]]) -> str:
    """Grouped vertical bars: one group per day, one bar per series."""
    bar, gap, plot_height, left = 16, 14, 220, 40
    per_group = bar * len(series) + gap
    width = left + max(len(days), 1) * per_group + 20
    peak = max([value for values in series.values() for value in values] + [1])
    parts = [f'<svg class="chart" data-section="{name}" xmlns="http://www.w3.org/2000/svg" '
             f'width="{max(width, 420)}" height="{plot_height + 80}" role="img">']
    base = plot_height + 30
    for index, day in enumerate(days):
        x0 = left + index * per_group
        parts.append(f'<text class="label" x="{x0}" y="{base + 16}">{html.escape(day[5:])}</text>')
        for offset, (series_name, values) in enumerate(series.items()):
            value = values[index]
            height = max(value / peak * plot_height, 1 if value else 0)
            x = x0 + offset * bar
            colour = SERIES_COLOURS[offset % len(SERIES_COLOURS)]
            parts.append(
                f'<rect x="{x}" y="{base - height:.1f}" width="{bar - 2}" height="{height:.1f}" '
                f'fill="{colour}"><title>{html.escape(day)} {series_name}: {_cell(value)}</title></rect>'
                f'<text class="value" data-series="{series_name}" x="{x}" y="{base - height - 3:.1f}" '
                f'font-size="9">{_cell(value)}</text>')
    parts.append(_legend(list(series), left, 12))
    parts.append("</svg>")
    return "".join(parts)


def _legend(names: List[str], x: int, y: int) -> str:
    items = []
    for offset, series_name in enumerate(names):
        colour = SERIES_COLOURS[offset % len(SERIES_COLOURS)]
        items.append(f'<rect x="{x + offset * 110}" y="{y - 9}" width="10" height="10" fill="{colour}"/>'
                     f'<text x="{x + offset * 110 + 14}" y="{y}">{html.escape(series_name)}</text>')
    return '<g class="legend">' + "".join(items) + "</g>"


def charts(report: Dict[str, Any], top: int = 20) -> Dict[str, str]:
    """The SVG chart of each charted section."""
    sections = report["sections"]
    out = {}
    if "search" in sections:
        search = sections["search"]["rows"][:top]
        out["search"] = _bars_horizontal(
            "search", [f"{row[0]} ({row[1]})" for row in search],
            {"views": [row[2] for row in search], "clicks": [row[3] for row in search]})
    if "feature_use" in sections:
        features = sections["feature_use"]["rows"][:top]
        out["feature_use"] = _bars_horizontal(
            "feature_use", [f"{row[0]} / {row[1]}" for row in features],
            {"clicks": [row[2] for row in features]})
    if "home_page" in sections:
        home = sections["home_page"]["rows"]
        out["home_page"] = _bars_per_day(
            "home_page", [row[0] for row in home],
            {"views": [row[1] for row in home], "clicks": [row[3] for row in home]})
    if "events_per_day" in sections:
        per_day: Dict[str, Dict[str, int]] = {}
        for day, event_type, events in sections["events_per_day"]["rows"]:
            per_day.setdefault(day, {})[event_type] = events
        days = sorted(per_day)
        out["events_per_day"] = _bars_per_day(
            "events_per_day", days,
            {kind: [per_day[day].get(kind, 0) for day in days] for kind in EVENT_TYPES})
    if "top_routes" in sections:
        routes = sections["top_routes"]["rows"][:top]
        out["top_routes"] = _bars_horizontal(
            "top_routes", [" ".join(str(part) for part in row[:3] if part) for row in routes],
            {"events": [row[3] for row in routes]})
    if "active_users" in sections:
        users = sections["active_users"]["rows"][:top]
        out["active_users"] = _bars_horizontal(
            "active_users", [f"{row[1] or ''} ({row[0]})" for row in users],
            {"events": [row[2] for row in users]})
    return out


def _table_html(name: str, section: dict) -> str:
    head = "".join(f"<th>{html.escape(column)}</th>" for column in section["columns"])
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(_cell(value))}</td>" for value in row) + "</tr>"
        for row in section["rows"])
    return (f'<table data-section="{name}"><thead><tr>{head}</tr></thead>'
            f"<tbody>{body}</tbody></table>")


STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 2em; color: #222; }
h1 { font-size: 1.4em; } h2 { font-size: 1.15em; margin-top: 2em; }
table { border-collapse: collapse; margin: 0.5em 0 1em; font-size: 12px; }
th, td { border: 1px solid #ccc; padding: 2px 8px; text-align: left; }
td:not(:first-child) { font-variant-numeric: tabular-nums; }
svg text { font: 11px system-ui, sans-serif; fill: #222; }
details { margin: 0.5em 0 1.5em; } .note { color: #a04000; } code { background: #f3f3f3; }
"""


def to_html(report: Dict[str, Any], top: int = 20) -> str:
    svg = charts(report, top)
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             f"<title>event_log report {html.escape(report['since'])} to "
             f"{html.escape(report['until'])}</title>", f"<style>{STYLE}</style></head><body>",
             f"<h1>Querybook event_log report</h1><p>Table <code>{html.escape(report['table'])}"
             f"</code>, {html.escape(report['since'])} to {html.escape(report['until'])} (UTC). "
             f"Indexes: {html.escape(', '.join(report['indexes']))}.</p>"]
    for note in report["notes"]:
        parts.append(f'<p class="note">{html.escape(note)}</p>')
    for name, section in report["sections"].items():
        parts.append(f'<h2 id="{name}">{html.escape(section["title"])}</h2>')
        if name in svg:
            parts.append(svg[name])
            parts.append(f"<details><summary>table</summary>{_table_html(name, section)}</details>")
        else:
            parts.append(_table_html(name, section))
    parts.append(f"<p>Recommended index: <code>{html.escape(RECOMMENDED_INDEX_DDL)}</code></p>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
