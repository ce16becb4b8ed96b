"""Prints changewatch's criterion medians beside the baseline's, as ratios (baseline / changewatch).

usage: ratios.py <criterion dir> <baseline output> [criterion output]

With the criterion output, also checks that both sides worked on identical inputs: every
"# page ..." / "# snapshot ..." line (size and md5) the two runs print must agree.
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


def inputs(lines):
    """The "# page 50KB: ..." and "# snapshot 50KB prev: ..." lines, keyed by what precedes ':'."""
    return {
        line.split(":", 1)[0]: line
        for line in lines
        if line.startswith(("# page ", "# snapshot "))
    }


def main():
    root, baseline = sys.argv[1], sys.argv[2]
    lines = pathlib.Path(baseline).read_text().splitlines()
    rows = []
    for line in lines:
        if line.startswith("#"):
            continue
        case, ms = line.split()
        rows.append((case, float(ms)))
    if len(sys.argv) > 3:
        ours = inputs(pathlib.Path(sys.argv[3]).read_text().splitlines())
        theirs = inputs(lines)
        differ = [k for k in theirs if ours.get(k) != theirs[k]]
        for k in differ:
            print(f"INPUTS DIFFER: changewatch {ours.get(k, '(missing)')!r} vs baseline {theirs[k]!r}")
        if not differ:
            print(f"inputs identical on both sides ({len(theirs)} md5s checked)")
    print(f"{'case':38} {'changewatch ms':>15} {'baseline ms':>12} {'ratio':>8}")
    for case, base in rows:
        ours = criterion_median_ms(root, case)
        if ours is None:
            print(f"{case:38} {'(not run)':>15} {base:12.2f}")
            continue
        print(f"{case:38} {ours:15.2f} {base:12.2f} {base / ours:7.1f}x")


if __name__ == "__main__":
    main()
