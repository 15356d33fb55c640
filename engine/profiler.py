"""Device-time profiling of kernel launches and transfers, like `torch.profiler` in spirit.

    import engine
    with engine.profiler.profile() as prof:
        y = (x @ w).relu().sum()
        y.backward()
    print(prof.table(sort_by="time", row_limit=10))
    prof.records          # one dict per launch / copy, in enqueue order
    prof.key_averages()   # one KernelStat per op name

Each record is a plain dict:

    name         the op name the kernel was launched under ('add', 'gemm', 'sum_reduce', ...),
                 or 'memcpy_htod' / 'memcpy_dtoh' / 'memcpy_dtod' / 'memset' for transfers
    kind         'kernel' or 'copy'
    device       'cl:N'
    seconds      device time (OpenCL event end - start)
    start, end   seconds since the first command of the profile was queued (device clock)
    queued       when the host enqueued it, same clock
    global_size, local_size   work sizes (None for copies)
    bytes        bytes moved: exact for copies; for kernels the total size of their buffer
                 arguments, an upper bound (a view's kernel is given its whole storage)

Profiling needs queues made with CL_QUEUE_PROFILING_ENABLE.  Such a queue costs per launch on
some drivers (on an H200, 12.2 -> 17.7 us for a small kernel launched back to back, +2.6 us
more while a profile records; no difference for a 2^24-element add; PoCL showed none within
the noise), so a profile (or debug level 2+) drains each device's queue and gives it a
profiling one only while it runs, and a plain one afterwards (CLGRAD_PROFILE=1 keeps them on).
Launches inside the block are recorded; the block waits for them at its end.

`set_debug(level)` switches the runtime's debug output (stderr) at run time, as
CLGRAD_DEBUG does at start-up: 0 off, 1 devices, 2 every kernel launch with its device time
(each launch then waits for its kernel), 3 also copies and fills, 4 also generated OpenCL source.
"""
import json
import math
import sys
import time

from .runtime import launch as _launch

__all__ = ["profile", "KernelStat", "KernelAverages", "set_debug", "get_debug"]


def set_debug(level):
    """Set clgrad's debug level at run time (0-4); returns the previous level."""
    try:
        level = int(level)
    except (TypeError, ValueError):
        raise ValueError(f"debug level must be an integer 0-4, got {level!r}") from None
    if not 0 <= level <= 4:
        raise ValueError(f"debug level must be 0-4 (0 off, 1 devices, 2 launches, 3 copies, 4 source), got {level}")
    prev = _launch.debug_level()
    _launch.set_debug_level(level)
    if level >= 1 and prev < 1:
        from .runtime.device import all_devices, default_device
        d0 = default_device()
        for d in all_devices():
            mark = "*" if d is d0 else " "
            print(f"[clgrad] {mark} cl:{d.index} {d.name} ({d.type}, {d.platform_name}, {d.compute_units} CUs, "
                  f"{d.global_mem / 2**30:.1f} GiB, driver {d.driver_version})", file=sys.stderr)
    return prev


def get_debug():
    """The current debug level (0-4)."""
    return _launch.debug_level()


def _fmt_time(s):
    if s != s:  # NaN
        return "?"
    if s >= 1:
        return f"{s:.3f} s"
    if s >= 1e-3:
        return f"{s * 1e3:.3f} ms"
    return f"{s * 1e6:.1f} us"


def _fmt_bytes(n):
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000


class KernelStat:
    """Aggregate of every launch of one op name (one row of key_averages())."""
    __slots__ = ("name", "kind", "calls", "total", "min", "max", "bytes", "share")

    def __init__(self, name, kind):
        self.name, self.kind = name, kind
        self.calls, self.total, self.min, self.max, self.bytes, self.share = 0, 0.0, math.inf, 0.0, 0, 0.0

    @property
    def mean(self):
        return self.total / self.calls if self.calls else 0.0

    @property
    def gbps(self):
        """Effective bandwidth, bytes / device time (GB/s), NaN when the time is 0 or unknown."""
        return self.bytes / self.total * 1e-9 if self.total > 0 else float("nan")

    # torch.profiler-style aliases
    count = property(lambda self: self.calls)
    key = property(lambda self: self.name)
    device_time_total = property(lambda self: self.total)

    def as_dict(self):
        return {"name": self.name, "kind": self.kind, "calls": self.calls, "total": self.total, "mean": self.mean,
                "min": self.min, "max": self.max, "bytes": self.bytes, "gbps": self.gbps, "share": self.share}

    def __repr__(self):
        return (f"KernelStat(name={self.name!r}, calls={self.calls}, total={_fmt_time(self.total)}, "
                f"mean={_fmt_time(self.mean)}, share={self.share:.1%})")


_SORT_KEYS = {
    "time": "total", "total": "total", "device_time_total": "total", "cuda_time_total": "total",
    "self_cuda_time_total": "total", "cpu_time_total": "total", "self_device_time_total": "total",
    "calls": "calls", "count": "calls", "mean": "mean", "max": "max", "min": "min",
    "bytes": "bytes", "gbps": "gbps", "name": "name",
}


def _sort_key(sort_by):
    try:
        return _SORT_KEYS[sort_by]
    except KeyError:
        raise ValueError(f"sort_by must be one of {sorted(_SORT_KEYS)}, got {sort_by!r}") from None


class KernelAverages(list):
    """A list of KernelStat (sorted by total device time) with a text table."""

    def sorted(self, sort_by="time"):
        key = _sort_key(sort_by)
        if key == "name":
            return KernelAverages(sorted(self, key=lambda s: s.name))
        return KernelAverages(sorted(self, key=lambda s: (-_nan0(getattr(s, key)), s.name)))

    def table(self, sort_by="time", row_limit=None):
        rows = self.sorted(sort_by)
        total = sum(s.total for s in rows)
        calls = sum(s.calls for s in rows)
        shown = rows if row_limit is None or row_limit < 0 else rows[:row_limit]
        head = ["Name", "Calls", "Total", "Mean", "Min", "Max", "Share", "Bytes", "GB/s"]
        body = [[s.name, str(s.calls), _fmt_time(s.total), _fmt_time(s.mean), _fmt_time(s.min), _fmt_time(s.max),
                 f"{s.share:.1%}", _fmt_bytes(s.bytes), "?" if s.gbps != s.gbps else f"{s.gbps:.2f}"]
                for s in shown]
        widths = [max(len(r[i]) for r in [head] + body) for i in range(len(head))]
        line = "-" * (sum(widths) + 2 * (len(head) - 1))

        def fmt(r):
            return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))
        out = [line, fmt(head), line] + [fmt(r) for r in body] + [line]
        more = f" ({len(rows) - len(shown)} more rows)" if len(shown) < len(rows) else ""
        out.append(f"{calls} launches and copies, {len(rows)} names, device time total {_fmt_time(total)}{more}")
        return "\n".join(out)

    def __str__(self):
        return self.table()


def _nan0(v):
    return 0.0 if v != v else v


class profile:
    """Context manager that records the device time of every kernel launch and copy in its block.

    `record_copies=False` keeps only kernel launches.  After the block: `records` (list of dicts,
    see the module doc), `key_averages()`, `table(sort_by=..., row_limit=...)`, `total_seconds`
    (device time), `wall_seconds` (host time of the block, waiting included), `export_chrome_trace(path)`.
    Profiles nest; an inner one sees only its own block."""

    def __init__(self, record_copies=True):
        self.record_copies = record_copies
        self.records = []
        self.wall_seconds = 0.0
        self._token = None

    def start(self):
        if self._token is not None:
            raise RuntimeError("this profile is already running")
        self.records = []
        self._t0 = time.perf_counter()
        self._token = _launch.begin_trace()
        return self

    def stop(self):
        if self._token is None:
            raise RuntimeError("this profile is not running")
        raw, self._token = _launch.end_trace(self._token), None
        self.wall_seconds = time.perf_counter() - self._t0
        if not self.record_copies:
            raw = [r for r in raw if r["kind"] == "kernel"]
        t0 = min((r["queued"] for r in raw if r["queued"] == r["queued"]), default=0)
        recs = []
        for r in raw:
            recs.append({"name": r["name"], "kind": r["kind"], "device": r["device"],
                         "seconds": (r["end"] - r["start"]) * 1e-9,
                         "start": (r["start"] - t0) * 1e-9, "end": (r["end"] - t0) * 1e-9,
                         "queued": (r["queued"] - t0) * 1e-9,
                         "global_size": r["global_size"], "local_size": r["local_size"], "bytes": r["bytes"]})
        self.records = recs
        return self

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False

    @property
    def total_seconds(self):
        """Sum of the device times of the records."""
        return sum(_nan0(r["seconds"]) for r in self.records)

    def key_averages(self):
        stats = {}
        for r in self.records:
            s = stats.get(r["name"])
            if s is None:
                s = stats[r["name"]] = KernelStat(r["name"], r["kind"])
            t = _nan0(r["seconds"])
            s.calls += 1
            s.total += t
            s.min = min(s.min, t)
            s.max = max(s.max, t)
            s.bytes += r["bytes"] or 0
        total = sum(s.total for s in stats.values())
        for s in stats.values():
            s.share = s.total / total if total > 0 else 0.0
        return KernelAverages(stats.values()).sorted("time")

    def table(self, sort_by="time", row_limit=None):
        return self.key_averages().table(sort_by=sort_by, row_limit=row_limit)

    def export_chrome_trace(self, path):
        """Write the records as a Chrome trace (chrome://tracing, Perfetto)."""
        events = [{"name": r["name"], "cat": r["kind"], "ph": "X", "ts": r["start"] * 1e6,
                   "dur": r["seconds"] * 1e6, "pid": r["device"], "tid": r["kind"],
                   "args": {"bytes": r["bytes"], "global_size": r["global_size"]}}
                  for r in self.records if r["seconds"] == r["seconds"]]
        with open(path, "w") as f:
            json.dump({"traceEvents": events, "displayTimeUnit": "ms"}, f)

    def __repr__(self):
        return f"<engine.profiler.profile: {len(self.records)} records, device time {_fmt_time(self.total_seconds)}>"
