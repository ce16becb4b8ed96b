"""Prints socket_load.mjs results (one JSON object per file) as a table, and for every N that has
both a changewatch row and an upstream row with the same trigger, the ratios upstream / changewatch
(above 1 = changewatch is faster / smaller).

usage: socket_report.py RESULT.json [RESULT.json ...]
"""
import json
import pathlib
import sys

COLUMNS = [
    ("label", "server", "{}"),
    ("trigger", "trigger", "{}"),
    ("n", "N", "{}"),
    ("rounds", "R", "{}"),
    ("all_p50_ms", "all-recv p50 ms", "{:.1f}"),
    ("all_p95_ms", "p95 ms", "{:.1f}"),
    ("all_max_ms", "max ms", "{:.1f}"),
    ("first_p50_ms", "first-recv p50 ms", "{:.1f}"),
    ("server_cpu_ms_per_round", "srv CPU ms/round", "{:.1f}"),
    ("client_cpu_ms_per_round", "client CPU ms/round", "{:.1f}"),
    ("connect_ms", "connect N ms", "{}"),
    ("rss_before_kb", "RSS before kB", "{}"),
    ("rss_after_kb", "RSS after kB", "{}"),
    ("rss_per_conn_kb", "kB/conn", "{:.1f}"),
    ("incomplete_rounds", "incomplete", "{}"),
]

# The latency phase (recheck of a changed ~46 KB page), when the run had one.
LATENCY_COLUMNS = [
    ("label", "server", "{}"),
    ("trigger", "trigger", "{}"),
    ("n", "N", "{}"),
    ("recheck_rounds", "K", "{}"),
    ("check_p50_ms", "recheck->done p50 ms", "{:.1f}"),
    ("check_p99_ms", "p99 ms", "{:.1f}"),
    ("check_all_p50_ms", "recheck->last of N p50 ms", "{:.1f}"),
    ("check_all_p99_ms", "p99 ms", "{:.1f}"),
    ("fanout_p50_ms", "first->last of N p50 ms", "{:.1f}"),
    ("fanout_p99_ms", "p99 ms", "{:.1f}"),
    ("fanout_max_ms", "max ms", "{:.1f}"),
    ("recheck_incomplete", "incomplete", "{}"),
]

RATIOS = [
    ("all_p50_ms", "all-recv p50"),
    ("all_p95_ms", "all-recv p95"),
    ("all_max_ms", "all-recv max"),
    ("server_cpu_ms_per_round", "server CPU per round"),
    ("connect_ms", "connect N clients"),
    ("rss_per_conn_kb", "RSS per connection"),
    ("check_p50_ms", "recheck -> done p50"),
    ("check_p99_ms", "recheck -> done p99"),
    ("check_all_p99_ms", "recheck -> last of N p99"),
    ("fanout_p50_ms", "first -> last of N p50"),
    ("fanout_p99_ms", "first -> last of N p99"),
]


def cell(row, key, fmt):
    v = row.get(key)
    return "-" if v is None else fmt.format(v)


def table(headers, rows):
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    line = lambda cells: "| " + " | ".join(c.rjust(w) for c, w in zip(cells, widths)) + " |"
    print(line(headers))
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in rows:
        print(line(r))


def main():
    results = []
    for p in sys.argv[1:]:
        text = pathlib.Path(p).read_text().strip()
        if text:
            results.append(json.loads(text.splitlines()[-1]))
    if not results:
        print("no results")
        return 1
    table([h for _, h, _ in COLUMNS], [[cell(r, k, f) for k, _, f in COLUMNS] for r in results])
    timed = [r for r in results if r.get("check_p50_ms") is not None]
    if timed:
        print()
        table([h for _, h, _ in LATENCY_COLUMNS],
              [[cell(r, k, f) for k, _, f in LATENCY_COLUMNS] for r in timed])

    pairs = []
    for ours in results:
        if not ours["label"].startswith("changewatch"):
            continue
        for base in results:
            if (base["label"].startswith("upstream") and base["n"] == ours["n"]
                    and base["trigger"] == ours["trigger"]):
                pairs.append((ours, base))
    if pairs:
        print()
        headers = ["N", "trigger", "figure", "changewatch", "upstream", "ratio upstream/changewatch"]
        rows = []
        for ours, base in pairs:
            for key, name in RATIOS:
                a, b = ours.get(key), base.get(key)
                ratio = f"{b / a:.1f}x" if a and b is not None else "-"
                rows.append([str(ours["n"]), ours["trigger"], name,
                             "-" if a is None else f"{a:g}", "-" if b is None else f"{b:g}", ratio])
        table(headers, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
