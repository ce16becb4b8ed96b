"""Prints changewatch's criterion medians beside the baseline's, as ratios (baseline / changewatch).

usage: ratios.py <criterion dir> <baseline output>
"""
import json
import pathlib
import sys


def criterion_median_ms(root, case):
    group, name, param = case.split("/")
    est = pathlib.Path(root, group, name, param, "new", "estimates.json")
    if not est.exists():
        return None
    return json.loads(est.read_text())["median"]["point_estimate"] / 1e6


def main():
    root, baseline = sys.argv[1], sys.argv[2]
    pages = {}
    rows = []
    for line in pathlib.Path(baseline).read_text().splitlines():
        if line.startswith("# page"):
            pages[line.split()[2].rstrip(":")] = line
            continue
        case, ms = line.split()
        rows.append((case, float(ms)))
    print(f"{'case':38} {'changewatch ms':>15} {'baseline ms':>12} {'ratio':>8}")
    for case, base in rows:
        ours = criterion_median_ms(root, case)
        if ours is None:
            print(f"{case:38} {'(not run)':>15} {base:12.2f}")
            continue
        print(f"{case:38} {ours:15.2f} {base:12.2f} {base / ours:7.1f}x")


if __name__ == "__main__":
    main()
