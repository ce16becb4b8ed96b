"""Prints the cost table of an `aws-cost` run (target/aws-cost.json by default).

Per check and per round: write and read units (table and index writes apart), SQS requests,
Lambda GB-seconds, and dollars per million checks at the list prices of prices.py. The stream
is not in it: the push service reads it whatever the number of checks.

    python3 bench/aws_cost/report.py [RESULTS.json] [--markdown] [--top N]
"""

from __future__ import annotations

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from prices import per_million, price  # noqa: E402


def lambda_usage(rnd: dict) -> tuple[float, float, dict]:
    gb_s = 0.0
    requests = 0.0
    per_fn = {}
    for name, f in rnd["lambda"].items():
        g = f["billed_ms"] / 1000.0 * f["memory_mb"] / 1024.0
        gb_s += g
        requests += f["invocations"]
        per_fn[name] = g
    return gb_s, requests, per_fn


def row(rnd: dict) -> dict:
    checks = rnd["checks"]
    stats = rnd["proxy"]
    gb_s, requests, per_fn = lambda_usage(rnd)
    dollars = per_million(price(stats, gb_s, requests, streams_billable=False), checks)
    ddb = stats["dynamodb"]
    return {
        "round": rnd["name"],
        "checks": checks,
        "wcu": ddb["wcu"] / checks,
        "wcu_table": ddb.get("wcu_table", ddb["wcu"]) / checks,
        "wcu_index": ddb.get("wcu_index", 0.0) / checks,
        "rcu": ddb["rcu"] / checks,
        "sqs": stats["sqs"]["requests"] / checks,
        "gb_s": gb_s / checks,
        "checker_ms": rnd["lambda"].get("CheckerFunction", {}).get("billed_ms", 0) / checks,
        "usd": dollars,
        "by_op": ddb.get("by_op", {}),
    }


def main() -> int:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    top = 0
    if "--top" in sys.argv:
        top = int(sys.argv[sys.argv.index("--top") + 1])
        args = [a for a in args if a != str(top)]
    path = args[0] if args else os.path.join("target", "aws-cost.json")
    with open(path) as f:
        result = json.load(f)
    rows = [row(r) for r in result["rounds"]]
    lens = result.get("history_lengths") or {}
    print(f"{result['watches']} watches, pages of {result['page_bytes'] // 1024} KB "
          f"(history lengths {lens.get('min')}..{lens.get('max')})\n")
    print("| round | checks | WCU/check (table + index) | RCU/check | SQS req/check | "
          "checker ms/check | GB-s/check | $/M DynamoDB | $/M SQS | $/M Lambda | **$/M checks** |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        u = r["usd"]
        print(f"| {r['round']} | {r['checks']} | {r['wcu']:.2f} ({r['wcu_table']:.2f} + {r['wcu_index']:.2f}) "
              f"| {r['rcu']:.2f} | {r['sqs']:.2f} | {r['checker_ms']:.1f} | {r['gb_s']:.4f} "
              f"| {u['dynamodb']:.2f} | {u['sqs']:.2f} | {u['lambda']:.2f} | **{u['total']:.2f}** |")
    if top:
        for r in rows:
            print(f"\n{r['round']}: DynamoDB operations per check")
            ops = sorted(r["by_op"].items(), key=lambda kv: -(kv[1].get("wcu", 0) + kv[1].get("rcu", 0)))
            for op, v in ops[:top]:
                print(f"  {op:22} calls {v['calls'] / r['checks']:6.2f}  wcu {v.get('wcu', 0) / r['checks']:6.2f}"
                      f"  rcu {v.get('rcu', 0) / r['checks']:6.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
