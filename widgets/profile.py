"""KernelProfile: a sortable per-kernel table and a timeline of OpenCL kernel launches.

records: a list of dicts {name, seconds, start, end, bytes (optional)}; start/end in
seconds on any common clock (only differences matter).  Tuples (name, seconds[, ...]) are
accepted too and laid end to end.
"""
import math
from html import escape

import anywidget
import traitlets as T

from ._util import fmt
from .graph import esm

__all__ = ["KernelProfile", "aggregate"]

COLUMNS = ["name", "launches", "total_ms", "mean_us", "share", "gbps"]
PALETTE = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#db2777", "#65a30d", "#ca8a04",
           "#4f46e5", "#0d9488", "#be123c"]
MAX_LANES = 16


def _normalise(records):
    out = []
    t = 0.0
    for r in records:
        if isinstance(r, dict):
            d = dict(r)
        else:
            d = {"name": r[0], "seconds": r[1]}
        sec = float(d.get("seconds", 0.0) or 0.0)
        if not math.isfinite(sec):  # a queue without profiling: no device time
            sec = 0.0
        start, end = d.get("start"), d.get("end")
        if start is None or not math.isfinite(start):
            d["start"], d["end"] = t, t + sec
        elif end is None or not math.isfinite(end):
            d["end"] = start + sec
        d["seconds"] = sec
        t = max(t, d["end"])
        out.append(d)
    return out


def aggregate(records):
    """Per-kernel rows sorted by total time: {name, launches, total_ms, mean_us, min_us, max_us,
    share (0..1), bytes, gbps (None without bytes)}."""
    recs = _normalise(records)
    agg = {}
    for r in recs:
        a = agg.setdefault(r["name"], {"name": r["name"], "launches": 0, "total": 0.0, "min": math.inf,
                                       "max": 0.0, "bytes": 0, "has_bytes": False})
        a["launches"] += 1
        a["total"] += r["seconds"]
        a["min"] = min(a["min"], r["seconds"])
        a["max"] = max(a["max"], r["seconds"])
        if r.get("bytes") is not None:
            a["bytes"] += int(r["bytes"])
            a["has_bytes"] = True
    total = sum(a["total"] for a in agg.values())
    rows = []
    for a in agg.values():
        rows.append({"name": a["name"], "launches": a["launches"], "total_ms": a["total"] * 1e3,
                     "mean_us": a["total"] / a["launches"] * 1e6, "min_us": a["min"] * 1e6, "max_us": a["max"] * 1e6,
                     "share": a["total"] / total if total > 0 else 0.0,
                     "bytes": a["bytes"] if a["has_bytes"] else None,
                     "gbps": a["bytes"] / a["total"] / 1e9 if a["has_bytes"] and a["total"] > 0 else None})
    rows.sort(key=lambda r: (-r["total_ms"], r["name"]))
    return rows


class KernelProfile(anywidget.AnyWidget):
    """KernelProfile(records, title='kernels')

    .rows            aggregated rows (see aggregate), in the current sort order
    .sort(by, descending=True)   by one of COLUMNS
    .to_text()       the table as plain text; .to_svg() the timeline as SVG text"""
    _esm = esm("profile")
    rows = T.List().tag(sync=True)
    events = T.List().tag(sync=True)
    sort_by = T.Unicode("total_ms").tag(sync=True)
    descending = T.Bool(True).tag(sync=True)
    title = T.Unicode("kernels").tag(sync=True)
    span = T.Float(0.0).tag(sync=True)

    def __init__(self, records, title="kernels"):
        recs = _normalise(records)
        t0 = min((r["start"] for r in recs), default=0.0)
        rows = aggregate(recs)
        lanes = {r["name"]: i for i, r in enumerate(rows[:MAX_LANES])}
        events = [[lanes.get(r["name"], MAX_LANES), round((r["start"] - t0) * 1e6, 3),
                   round((r["end"] - t0) * 1e6, 3), r["name"]] for r in recs]
        super().__init__(rows=rows, events=events, title=title,
                         span=max((e[2] for e in events), default=0.0))
        self.records = recs
        self.observe(self._resort, names=["sort_by", "descending"])

    def _resort(self, change=None):
        k = self.sort_by
        if k not in COLUMNS:
            raise ValueError(f"cannot sort by {k!r}; choose one of {COLUMNS}")
        self.rows = sorted(self.rows, key=lambda r: (_key(r[k]), r["name"]), reverse=self.descending)

    def sort(self, by="total_ms", descending=True):
        if by not in COLUMNS:
            raise ValueError(f"cannot sort by {by!r}; choose one of {COLUMNS}")
        with self.hold_trait_notifications():
            self.sort_by, self.descending = by, descending
        self._resort()
        return self

    @property
    def launches(self):
        return sum(r["launches"] for r in self.rows)

    @property
    def total_seconds(self):
        return sum(r["total_ms"] for r in self.rows) / 1e3

    def to_text(self, top=None):
        head = f"{'kernel':<40} {'launches':>8} {'total ms':>10} {'mean us':>10} {'share':>7} {'GB/s':>8}"
        lines = [head, "-" * len(head)]
        for r in self.rows[:top]:
            gb = fmt(r["gbps"], 3) if r["gbps"] is not None else "-"
            lines.append(f"{r['name'][:40]:<40} {r['launches']:>8} {r['total_ms']:>10.3f} {r['mean_us']:>10.1f} "
                         f"{100 * r['share']:>6.1f}% {gb:>8}")
        return "\n".join(lines)

    def to_svg(self, width=900):
        """The timeline: one lane per kernel (the 16 longest), launches as bars."""
        n = min(len(self.rows), MAX_LANES) + (1 if len(self.rows) > MAX_LANES else 0)
        lane_h, left = 16, 180
        H = 24 + n * lane_h + 20
        span = self.span or 1.0
        sx = (width - left - 10) / span
        out = [f'<svg xmlns="http://www.w3.org/2000/svg" class="clgrad-timeline" width="{width}" height="{H}" '
               f'viewBox="0 0 {width} {H}" font-family="ui-monospace, monospace" font-size="10">',
               f'<rect width="{width}" height="{H}" fill="#fff"/>']
        names = [r["name"] for r in self.rows[:MAX_LANES]] + (["(other)"] if len(self.rows) > MAX_LANES else [])
        for i, nm in enumerate(names):
            y = 20 + i * lane_h
            out.append(f'<text x="4" y="{y + 11}">{escape(nm[:28])}</text>')
            out.append(f'<line x1="{left}" x2="{width - 10}" y1="{y + lane_h - 1}" y2="{y + lane_h - 1}" '
                       f'stroke="#f3f4f6"/>')
        for lane, a, b, nm in self.events:
            y = 20 + lane * lane_h
            w = max((b - a) * sx, 0.8)
            out.append(f'<rect x="{left + a * sx:.2f}" y="{y + 2}" width="{w:.2f}" height="{lane_h - 5}" '
                       f'fill="{PALETTE[lane % len(PALETTE)]}"><title>{escape(nm)} {b - a:.1f} us</title></rect>')
        out.append(f'<text x="{left}" y="12" fill="#6b7280">0</text><text x="{width - 10}" y="12" '
                   f'text-anchor="end" fill="#6b7280">{span / 1e3:.3f} ms</text></svg>')
        return "".join(out)

    def __repr__(self):
        return f"KernelProfile(kernels={len(self.rows)}, launches={self.launches})"

    def _repr_mimebundle_(self, **kwargs):
        data = super()._repr_mimebundle_(**kwargs)
        meta = None
        if isinstance(data, tuple):
            data, meta = data
        data = dict(data or {})
        data["text/plain"] = repr(self)
        data["text/html"] = f"<pre>{escape(self.to_text(top=30))}</pre>{self.to_svg()}"
        return (data, meta) if meta is not None else data


def _key(v):
    if v is None:
        return -math.inf
    return v
