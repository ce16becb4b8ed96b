"""us-east-1 list prices used by the cost benchmark, and a pricer for the proxy's stats.

Prices (us-east-1, on-demand / pay-per-request):
  DynamoDB   $0.625 per million write request units, $0.125 per million read request units
  Streams    $0.02 per 100,000 streams read request units (one per GetRecords call)
  Lambda     arm64: $0.0000133334 per GB-second (first pricing tier), $0.20 per million requests
  SQS        $0.40 per million requests (standard queues, beyond the free tier)

Free tiers are ignored: the benchmark reports the marginal price of work.
"""

from __future__ import annotations

DYNAMODB_WRITE_PER_UNIT = 0.625 / 1_000_000
DYNAMODB_READ_PER_UNIT = 0.125 / 1_000_000
STREAMS_READ_PER_UNIT = 0.02 / 100_000
LAMBDA_ARM64_PER_GB_SECOND = 0.0000133334
LAMBDA_PER_REQUEST = 0.20 / 1_000_000
SQS_PER_REQUEST = 0.40 / 1_000_000


def price(stats: dict, lambda_gb_seconds: float = 0.0, lambda_requests: float = 0.0, *,
          streams_billable: bool = True) -> dict:
    """Dollars per component for a `/__stats` snapshot of pricing_proxy.py.

    `stats` is the JSON the proxy's GET /__stats returns. `streams_billable=False` prices
    GetRecords at zero, which is what AWS does when the reader is a Lambda event source
    mapping (DynamoDB triggers); a reader of its own (the push service) pays for them.
    """
    ddb = stats.get("dynamodb", {}) or {}
    streams = stats.get("streams", {}) or {}
    sqs = stats.get("sqs", {}) or {}

    wcu = float(ddb.get("wcu", 0.0))
    rcu = float(ddb.get("rcu", 0.0))
    get_records = float(streams.get("get_records", 0))
    sqs_requests = float(sqs.get("requests", 0))

    out = {
        "dynamodb_write": wcu * DYNAMODB_WRITE_PER_UNIT,
        "dynamodb_write_table": float(ddb.get("wcu_table", wcu)) * DYNAMODB_WRITE_PER_UNIT,
        "dynamodb_write_index": float(ddb.get("wcu_index", 0.0)) * DYNAMODB_WRITE_PER_UNIT,
        "dynamodb_read": rcu * DYNAMODB_READ_PER_UNIT,
        "streams": get_records * STREAMS_READ_PER_UNIT if streams_billable else 0.0,
        "sqs": sqs_requests * SQS_PER_REQUEST,
        "lambda_compute": float(lambda_gb_seconds) * LAMBDA_ARM64_PER_GB_SECOND,
        "lambda_requests": float(lambda_requests) * LAMBDA_PER_REQUEST,
    }
    out["dynamodb"] = out["dynamodb_write"] + out["dynamodb_read"]
    out["lambda"] = out["lambda_compute"] + out["lambda_requests"]
    out["total"] = out["dynamodb"] + out["streams"] + out["sqs"] + out["lambda"]
    return out


def per_million(dollars: dict, checks: float) -> dict:
    """Scale a `price()` result to dollars per million checks."""
    if not checks:
        return {k: 0.0 for k in dollars}
    return {k: v * 1_000_000 / checks for k, v in dollars.items()}
