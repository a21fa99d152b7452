"""``ipallow bench --plot``: the result as a PNG bar chart (matplotlib, imported on use)."""

from __future__ import annotations

import os

import numpy as np

from ipallow.bench._run import LOAD_ROW


class PlotUnavailable(RuntimeError):
    """``--plot`` was asked for but matplotlib is not installed."""


def require_matplotlib() -> None:
    """Raise :class:`PlotUnavailable` (with the install hint) unless matplotlib imports."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise PlotUnavailable("--plot needs matplotlib, which is not installed: "
                              "pip install 'ipallow[plot]' (or pip install matplotlib)") from None


def plot(result: dict, handle) -> None:
    """Write a PNG bar chart of ``result`` to the binary file ``handle``.

    Three panels: single-lookup p50 (ns per call, log scale), batch throughput
    (M lookups/s, log scale) and build time; ipallow's bars are drawn darker.
    """
    require_matplotlib()
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lat = result["latency"]
    tp = result["throughput"]
    builds = [b for b in result["build"] if b["what"] != LOAD_ROW]
    sizes = [max(len(lat), 1), max(len(tp), 1), max(len(builds), 1)]
    fig, axes = plt.subplots(3, 1, figsize=(11, 1.6 + 0.24 * sum(sizes) + 1.5),
                             gridspec_kw={"height_ratios": sizes})

    def bars(ax, labels, values, impls, title, xlabel, log=True):
        y = np.arange(len(labels))
        colors = ["#1f4e79" if i == "ipallow" else "#9dbbd8" for i in impls]
        ax.barh(y, values, color=colors)
        ax.set_yticks(y, labels, fontsize=8)
        ax.invert_yaxis()
        if log and values and min(values) > 0:
            ax.set_xscale("log")
        ax.set_title(title, fontsize=10, loc="left")
        ax.set_xlabel(xlabel, fontsize=9)
        ax.tick_params(axis="x", labelsize=8)
        for yi, v in zip(y, values):
            ax.text(v, yi, f" {v:,.3g}", va="center", fontsize=7)
        ax.margins(x=0.12)

    bars(axes[0], [f"IPv{r['family']} {r['impl']}: {r['operation']} ({r['input']})" for r in lat],
         [max(r["p50_ns"], 0.1) for r in lat], [r["impl"] for r in lat],
         "single lookup, p50 ns per call, loop floor subtracted (lower is better)", "ns per call (log scale)")
    bars(axes[1], [f"IPv{r['family']} {r['impl']}: {r['operation']} ({r['input']})" for r in tp],
         [r["best_M_per_s"] or 0.0 for r in tp], [r["impl"] for r in tp],
         "batch throughput, best run (higher is better)", "million lookups / s (log scale)")
    bars(axes[2], [b["impl"] for b in builds], [b["best_s"] * 1e3 for b in builds],
         [b["impl"] for b in builds], "build from the list's prefixes as CIDR strings (lower is better)", "ms",
         log=False)
    src = os.path.basename(str(result["list"].get("name", "")))
    m = result["machine"]
    load = "/".join(f"{x:g}" for x in m["load_average"]) if m["load_average"] else "?"
    fig.suptitle(f"ipallow bench: {src}: {result['list']['prefixes']['ipv4']:,} IPv4 + "
                 f"{result['list']['prefixes']['ipv6']:,} IPv6 prefixes, {result['queries']['count']:,} queries\n"
                 f"{m['cpu']}, {m['cpus']} CPUs, load average {load}; Python {m['python']}, "
                 f"ipallow {m['ipallow']}", fontsize=9)
    fig.tight_layout()
    fig.savefig(handle, format="png", dpi=100)
    plt.close(fig)
