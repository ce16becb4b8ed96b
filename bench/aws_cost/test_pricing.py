"""Tests of the pricing proxy.

    cd /work/main && PATH=/root/.pyenv/versions/3.11.7/bin:$PATH \
        python3 -m unittest bench/aws_cost/test_pricing.py

The unit tests check the size and capacity rules against the worked examples of the
DynamoDB developer guide. The live tests start a moto server and the proxy (both on
127.0.0.1, free ports) and drive them with boto3.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

import prices  # noqa: E402
import pricing_proxy as pp  # noqa: E402

KB = 1024


def sized(n: int, pk: str = "k") -> dict:
    """An item of exactly n bytes: name "pk" (2) + value, name "d" (1) + filler."""
    assert n - 2 - len(pk) - 1 >= 0
    return {"pk": {"S": pk}, "d": {"S": "x" * (n - 2 - len(pk) - 1)}}


class SizeRules(unittest.TestCase):
    """Item sizes, per https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/CapacityUnitCalculations.html"""

    def test_sized_helper(self):
        for n in (4, 500, 3584, 10 * KB):
            self.assertEqual(pp.item_size(sized(n)), n)

    def test_string_is_utf8_bytes_of_name_and_value(self):
        # "é" is 2 bytes in UTF-8, "ü" too.
        self.assertEqual(pp.item_size({"é": {"S": "ü"}}), 4)
        self.assertEqual(pp.item_size({"name": {"S": "Mocca"}}), 9)

    def test_number_one_byte_per_two_significant_digits_plus_one(self):
        self.assertEqual(pp.number_size("12345"), 4)  # 5 digits -> 3 + 1
        self.assertEqual(pp.number_size("1234"), 3)  # 4 digits -> 2 + 1
        self.assertEqual(pp.number_size("1000"), 2)  # trailing zeroes trimmed: 1 digit
        self.assertEqual(pp.number_size("0.00100"), 2)  # leading and trailing zeroes trimmed
        self.assertEqual(pp.number_size("-1.5"), 2)
        self.assertEqual(pp.number_size("0"), 1)
        self.assertEqual(pp.number_size("1" * 38), 20)  # 38 significant digits: exact, no rounding
        self.assertEqual(pp.item_size({"n": {"N": "12345"}}), 5)

    def test_binary_is_raw_length(self):
        raw = b"\x00\x01\x02abc"
        self.assertEqual(pp.item_size({"b": {"B": base64.b64encode(raw).decode()}}), 1 + 6)
        self.assertEqual(pp.item_size({"b": {"B": raw}}), 1 + 6)  # boto3 form

    def test_bool_and_null_are_one_byte(self):
        self.assertEqual(pp.item_size({"ok": {"BOOL": True}, "z": {"NULL": True}}), 3 + 2)

    def test_list_and_map_overhead(self):
        # 3 bytes for the List/Map, 1 byte per element; empty List/Map: 3 bytes.
        self.assertEqual(pp.item_size({"l": {"L": []}}), 1 + 3)
        self.assertEqual(pp.item_size({"m": {"M": {}}}), 1 + 3)
        self.assertEqual(pp.item_size({"l": {"L": [{"S": "ab"}, {"N": "1"}]}}), 1 + 3 + (2 + 1) + (2 + 1))
        self.assertEqual(pp.item_size({"m": {"M": {"k": {"BOOL": False}, "xy": {"S": "abc"}}}}),
                         1 + 3 + (1 + 1 + 1) + (2 + 3 + 1))
        nested = {"m": {"M": {"in": {"L": [{"S": "a"}]}}}}
        self.assertEqual(pp.item_size(nested), 1 + 3 + (2 + (3 + 1 + 1) + 1))

    def test_sets_are_sum_of_elements(self):
        self.assertEqual(pp.item_size({"s": {"SS": ["ab", "cde"]}}), 1 + 5)
        self.assertEqual(pp.item_size({"s": {"NS": ["12", "345"]}}), 1 + 2 + 3)


class DocExamples(unittest.TestCase):
    """Worked examples of the developer guide:
    https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/read-write-operations.html (and the
    older CapacityUnitCalculations page with the same examples),
    https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/GSI.html#GSI.ThroughputConsiderations,
    https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/transaction-apis.html#transaction-capacity-handling
    """

    def test_getitem_rounds_up_to_4kb(self):
        # "if you read an item that is 3.5 KB, DynamoDB rounds the item size to 4 KB.
        #  If you read an item of 10 KB, DynamoDB rounds the item size to 12 KB."
        self.assertEqual(pp.read_units(pp.item_size(sized(3584)), True), 1)
        self.assertEqual(pp.read_units(pp.item_size(sized(10 * KB)), True), 3)
        self.assertEqual(pp.read_units(pp.item_size(sized(10 * KB)), False), 1.5)

    def test_8kb_item_strong_eventual_transactional(self):
        # "if your item size is 8 KB, you require 2 read units to sustain one strongly
        #  consistent read, 1 read unit if you choose eventually consistent reads, or 4 read
        #  units for a transactional read request."
        s = pp.item_size(sized(8 * KB))
        self.assertEqual(pp.read_units(s, True), 2)
        self.assertEqual(pp.read_units(s, False), 1)
        self.assertEqual(pp.TX_FACTOR * pp.read_units(s, True), 4)

    def test_missing_item_still_costs(self):
        # A read of an item that does not exist: 1 (strong) or 0.5 (eventual).
        self.assertEqual(pp.read_units(pp.item_size(None), True), 1)
        self.assertEqual(pp.read_units(pp.item_size(None), False), 0.5)

    def test_batchgetitem_rounds_each_item(self):
        # "if BatchGetItem reads a 1.5 KB item and a 6.5 KB item, DynamoDB will calculate
        #  the size as 12 KB (4 KB + 8 KB), not 8 KB (1.5 KB + 6.5 KB)."
        a, b = sized(1536), sized(6656)
        self.assertEqual(pp.read_units(pp.item_size(a)) + pp.read_units(pp.item_size(b)), 3)

    def test_query_rounds_the_total(self):
        # "suppose your query returns 10 items whose combined size is 40.8 KB. DynamoDB
        #  rounds the item size for the operation to 44 KB."
        items = [sized(4178) for _ in range(9)] + [sized(41779 - 9 * 4178)]
        total = sum(pp.item_size(i) for i in items)
        self.assertEqual(total, 41779)
        self.assertEqual(pp.read_units(total, True), 11)
        # "If a query returns 1500 items of 64 bytes each, the cumulative size is 96 KB."
        # (96,000 bytes: the example's "KB" is loose here; either way it is 24 x 4 KB.)
        total = sum(pp.item_size(sized(64)) for _ in range(1500))
        self.assertEqual(total, 96000)
        self.assertEqual(pp.read_units(total, True), 24)
        # "For an eventually consistent read, if total item size is 80 KB, the operation
        #  consumes only 10 capacity units."
        self.assertEqual(pp.read_units(80 * KB, False), 10)

    def test_gsi_query_example(self):
        # "a global secondary index where each item contains 2000 bytes ... the query
        #  returns 8 items ... 16,000 bytes ... rounded up to the nearest 4 KB boundary ...
        #  0.5 x (16 KB / 4 KB), or 2 read capacity units."
        ix = pp.IndexInfo("gsi", ["pk"], "ALL", [], True)
        total = sum(ix.entry_size(sized(2000), ["pk"]) for _ in range(8))
        self.assertEqual(total, 16000)
        self.assertEqual(pp.read_units(total, False), 2)

    def test_write_rounds_up_to_1kb(self):
        # "if you put or delete an item of 1.6 KB, DynamoDB rounds the item size up to 2 KB."
        self.assertEqual(pp.write_units(pp.item_size(sized(1638))), 2)
        # "if BatchWriteItem writes a 500 byte item and a 3.5 KB item, DynamoDB will
        #  calculate the size as 5 KB (1 KB + 4 KB)"
        self.assertEqual(pp.write_units(pp.item_size(sized(500))) + pp.write_units(pp.item_size(sized(3584))), 5)

    def test_failed_conditional_write(self):
        # "a failed conditional write of a 1 KB item would consume one write capacity unit;
        #  if the item were twice that size, ... two ... If the item does not exist,
        #  DynamoDB will consume one write capacity unit."
        self.assertEqual(pp.write_units(pp.item_size(sized(1024))), 1)
        self.assertEqual(pp.write_units(pp.item_size(sized(2048))), 2)
        self.assertEqual(pp.write_units(pp.item_size(None)), 1)

    def test_transaction_example(self):
        # "each transaction writes three 500-byte items ... Each item requires two write
        #  capacity units ... you would need to provision six WCUs"
        self.assertEqual(sum(pp.TX_FACTOR * pp.write_units(pp.item_size(sized(500))) for _ in range(3)), 6)

    def test_gsi_write_rules(self):
        keys = ["pk"]
        ix = pp.IndexInfo("byg", ["g"], "KEYS_ONLY", [], True)
        base = {"pk": {"S": "a"}, "data": {"S": "y" * 3000}}
        with_g = dict(base, g={"S": "x"})
        # not in the index before or after: nothing
        self.assertEqual(pp.index_write_cost(ix, keys, base, base), 0)
        self.assertEqual(pp.index_write_cost(ix, keys, None, base), 0)
        # new item carrying the index key: one put (the entry is only pk + g)
        self.assertEqual(pp.index_write_cost(ix, keys, None, with_g), 1)
        # index key removed: one delete
        self.assertEqual(pp.index_write_cost(ix, keys, with_g, base), 1)
        # index key value changed A -> B: delete + put
        self.assertEqual(pp.index_write_cost(ix, keys, with_g, dict(with_g, g={"S": "w"})), 2)
        # a non-projected attribute changed: no index write
        self.assertEqual(pp.index_write_cost(ix, keys, with_g, dict(with_g, data={"S": "z"})), 0)
        # same number written differently is the same value
        ixn = pp.IndexInfo("byn", ["n"], "KEYS_ONLY", [], True)
        self.assertEqual(pp.index_write_cost(ixn, keys, dict(base, n={"N": "1.0"}), dict(base, n={"N": "1"})), 0)
        # INCLUDE / ALL: a projected attribute changed -> one write sized by the bigger entry
        inc = pp.IndexInfo("inc", ["g"], "INCLUDE", ["data"], True)
        self.assertEqual(pp.index_write_cost(inc, keys, with_g, dict(with_g, data={"S": "z" * 5000})), 5)
        alli = pp.IndexInfo("all", ["g"], "ALL", [], True)
        self.assertEqual(pp.index_write_cost(alli, keys, with_g, dict(with_g, other={"S": "1"})), 3)


class Prices(unittest.TestCase):
    def test_price(self):
        stats = {"dynamodb": {"wcu": 2_000_000, "wcu_table": 1_500_000, "wcu_index": 500_000, "rcu": 4_000_000},
                 "streams": {"get_records": 100_000}, "sqs": {"requests": 1_000_000}}
        d = prices.price(stats, lambda_gb_seconds=1000, lambda_requests=1_000_000)
        self.assertAlmostEqual(d["dynamodb_write"], 1.25)
        self.assertAlmostEqual(d["dynamodb_write_index"], 0.3125)
        self.assertAlmostEqual(d["dynamodb_read"], 0.5)
        self.assertAlmostEqual(d["streams"], 0.02)
        self.assertAlmostEqual(d["sqs"], 0.40)
        self.assertAlmostEqual(d["lambda_compute"], 0.0133334)
        self.assertAlmostEqual(d["lambda_requests"], 0.20)
        self.assertAlmostEqual(d["total"], 1.25 + 0.5 + 0.02 + 0.40 + 0.0133334 + 0.20)
        self.assertEqual(prices.price(stats, streams_billable=False)["streams"], 0.0)
        self.assertAlmostEqual(prices.per_million(d, 2_000_000)["sqs"], 0.20)


# --------------------------------------------------------------------------------------
# Live: moto server + proxy subprocesses on 127.0.0.1
# --------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_http(url: str, timeout: float, proc: subprocess.Popen):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before {url} answered")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                r.read()
            return
        except urllib.error.HTTPError:
            return  # any HTTP answer means it is up
        except OSError as e:
            last = e
            time.sleep(0.2)
    raise TimeoutError(f"{url} did not answer within {timeout}s: {last}")


def _have_moto() -> bool:
    try:
        import boto3  # noqa: F401
        import moto  # noqa: F401
        return True
    except ImportError:
        return False


@unittest.skipUnless(_have_moto(), "needs boto3 and moto (PATH=/root/.pyenv/versions/3.11.7/bin:$PATH)")
class Live(unittest.TestCase):
    procs: list = []

    @classmethod
    def setUpClass(cls):
        import boto3
        from botocore.config import Config

        cls.tmp = tempfile.TemporaryDirectory()
        cls.addClassCleanup(cls.tmp.cleanup)
        cls.procs = []
        cls.addClassCleanup(cls._kill_all)
        env = dict(os.environ, AWS_EC2_METADATA_DISABLED="true")

        moto_port = _free_port()
        moto_log = open(os.path.join(cls.tmp.name, "moto.log"), "wb")
        cls.addClassCleanup(moto_log.close)
        moto = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(moto_port)],
                                stdout=moto_log, stderr=subprocess.STDOUT, env=env)
        cls.procs.append(moto)
        _wait_http(f"http://127.0.0.1:{moto_port}/moto-api/", 60, moto)

        port_file = os.path.join(cls.tmp.name, "port")
        proxy_log = open(os.path.join(cls.tmp.name, "proxy.log"), "wb")
        cls.addClassCleanup(proxy_log.close)
        proxy = subprocess.Popen([sys.executable, os.path.join(HERE, "pricing_proxy.py"),
                                  "--upstream", f"http://127.0.0.1:{moto_port}",
                                  "--listen", "127.0.0.1:0", "--port-file", port_file],
                                 stdout=proxy_log, stderr=subprocess.STDOUT, env=env)
        cls.procs.append(proxy)
        deadline = time.monotonic() + 30
        while not os.path.exists(port_file):
            if proxy.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("proxy did not write its port file")
            time.sleep(0.05)
        with open(port_file) as f:
            cls.port = int(f.read().strip())
        cls.url = f"http://127.0.0.1:{cls.port}"
        _wait_http(cls.url + "/__stats", 30, proxy)

        kw = dict(endpoint_url=cls.url, region_name="us-east-1", aws_access_key_id="AKIDPRICINGTEST",
                  aws_secret_access_key="x",
                  config=Config(retries={"max_attempts": 1}, connect_timeout=10, read_timeout=60))
        cls.ddb = boto3.client("dynamodb", **kw)
        cls.sqs = boto3.client("sqs", **kw)
        cls.streams = boto3.client("dynamodbstreams", **kw)

        cls.ddb.create_table(
            TableName="t1", BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[{"AttributeName": n, "AttributeType": "S"} for n in ("pk", "sk", "g")],
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            GlobalSecondaryIndexes=[{"IndexName": "byg", "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"}],
                                     "Projection": {"ProjectionType": "KEYS_ONLY"}}],
            StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
        )

    @classmethod
    def _kill_all(cls):
        for p in reversed(cls.procs):
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait(timeout=10)
        cls.procs = []

    # ---- helpers ----
    def control(self, method: str, path: str):
        req = urllib.request.Request(self.url + path, method=method, data=b"" if method == "POST" else None)
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read())

    def measure(self, fn):
        self.control("POST", "/__reset")
        fn()
        return self.control("GET", "/__stats")

    def assertDdb(self, stats, **expected):
        d = stats["dynamodb"]
        self.assertEqual(d["accounting_errors"], 0, json.dumps(self.control("GET", "/__log?n=5"), indent=1))
        for k, v in expected.items():
            self.assertAlmostEqual(d[k], v, msg=f"{k}: {json.dumps(d, indent=1)}")

    @staticmethod
    def key(pk, sk):
        return {"pk": {"S": pk}, "sk": {"S": sk}}

    # ---- tests ----
    def test_01_put_update_move_index_key_conditional(self):
        item = {"pk": {"S": "a"}, "sk": {"S": "1"}, "g": {"S": "x"}, "data": {"S": "y" * 1500}}
        self.assertEqual(pp.item_size(item), 1512)

        st = self.measure(lambda: self.ddb.put_item(TableName="t1", Item=item))
        self.assertDdb(st, wcu_table=2, wcu_index=1, wcu=3, rcu=0)
        self.assertEqual(st["dynamodb"]["by_index"]["t1/byg"]["wcu"], 1)
        self.assertEqual(st["dynamodb"]["by_op"]["PutItem"]["calls"], 1)

        # a non-key, non-projected attribute: table only
        st = self.measure(lambda: self.ddb.update_item(
            TableName="t1", Key=self.key("a", "1"), UpdateExpression="SET #d = :v",
            ExpressionAttributeNames={"#d": "data"}, ExpressionAttributeValues={":v": {"S": "z" * 1500}}))
        self.assertDdb(st, wcu_table=2, wcu_index=0)

        # move the index key: delete + put on the index
        st = self.measure(lambda: self.ddb.update_item(
            TableName="t1", Key=self.key("a", "1"), UpdateExpression="SET g = :g",
            ExpressionAttributeValues={":g": {"S": "w"}}))
        self.assertDdb(st, wcu_table=2, wcu_index=2)

        # failed condition: charged for the item as it is, no index write
        def failing():
            with self.assertRaises(self.ddb.exceptions.ConditionalCheckFailedException):
                self.ddb.update_item(TableName="t1", Key=self.key("a", "1"), UpdateExpression="SET e = :v",
                                     ConditionExpression="attribute_not_exists(pk)",
                                     ExpressionAttributeValues={":v": {"S": "1"}})
        st = self.measure(failing)
        self.assertDdb(st, wcu_table=2, wcu_index=0, conditional_check_failed=1)

        # failed condition on an item that does not exist: 1
        def failing_missing():
            with self.assertRaises(self.ddb.exceptions.ConditionalCheckFailedException):
                self.ddb.delete_item(TableName="t1", Key=self.key("nope", "1"), ConditionExpression="attribute_exists(pk)")
        st = self.measure(failing_missing)
        self.assertDdb(st, wcu=1)

        # delete: sized by the deleted item, and its index entry goes
        st = self.measure(lambda: self.ddb.delete_item(TableName="t1", Key=self.key("a", "1")))
        self.assertDdb(st, wcu_table=2, wcu_index=1)

    def test_02_reads(self):
        big = {"pk": {"S": "r"}, "sk": {"S": "1"}, "data": {"S": "q" * 5000}}  # 5010 bytes
        self.ddb.put_item(TableName="t1", Item=big)
        st = self.measure(lambda: self.ddb.get_item(TableName="t1", Key=self.key("r", "1"), ConsistentRead=True))
        self.assertDdb(st, rcu=2, wcu=0)
        st = self.measure(lambda: self.ddb.get_item(TableName="t1", Key=self.key("r", "1")))
        self.assertDdb(st, rcu=1)
        # a projection does not make the read cheaper
        st = self.measure(lambda: self.ddb.get_item(TableName="t1", Key=self.key("r", "1"), ConsistentRead=True,
                                                    ProjectionExpression="pk"))
        self.assertDdb(st, rcu=2)
        # not found: the minimum
        st = self.measure(lambda: self.ddb.get_item(TableName="t1", Key=self.key("r", "none")))
        self.assertDdb(st, rcu=0.5)

        # BatchGetItem: 1.5 KB + 6.5 KB items -> 1 + 2, strongly consistent
        self.ddb.put_item(TableName="t1", Item={"pk": {"S": "bg"}, "sk": {"S": "1"}, "d": {"S": "x" * 1530}})
        self.ddb.put_item(TableName="t1", Item={"pk": {"S": "bg"}, "sk": {"S": "2"}, "d": {"S": "x" * 6640}})
        st = self.measure(lambda: self.ddb.batch_get_item(RequestItems={"t1": {
            "Keys": [self.key("bg", "1"), self.key("bg", "2")], "ConsistentRead": True}}))
        self.assertDdb(st, rcu=3)

    def test_03_query_counts_items_read_before_the_filter(self):
        for sk in "1234":
            self.ddb.put_item(TableName="t1", Item={"pk": {"S": "q"}, "sk": {"S": sk}, "data": {"S": "y" * 1500},
                                                    **({"g": {"S": "qq"}} if sk == "1" else {})})
        # 4 items: 1513 + 3 x 1510 = 6043 bytes -> 2 x 4 KB

        def filtered(consistent):
            out = self.ddb.query(TableName="t1", KeyConditionExpression="pk = :p", FilterExpression="#d = :nope",
                                 ExpressionAttributeNames={"#d": "data"},
                                 ExpressionAttributeValues={":p": {"S": "q"}, ":nope": {"S": "no"}},
                                 ConsistentRead=consistent)
            self.assertEqual(out["Count"], 0)

        st = self.measure(lambda: filtered(True))
        self.assertDdb(st, rcu=2)
        st = self.measure(lambda: filtered(False))
        self.assertDdb(st, rcu=1)

        # Select=COUNT reads the same items
        st = self.measure(lambda: self.ddb.query(TableName="t1", KeyConditionExpression="pk = :p",
                                                 ExpressionAttributeValues={":p": {"S": "q"}}, Select="COUNT"))
        self.assertDdb(st, rcu=1)

        # GSI query (KEYS_ONLY): the entry is pk + sk + g = 3 + 2 + 3 bytes -> 0.5
        st = self.measure(lambda: self.ddb.query(TableName="t1", IndexName="byg", KeyConditionExpression="g = :g",
                                                 ExpressionAttributeValues={":g": {"S": "qq"}}))
        self.assertDdb(st, rcu=0.5)
        self.assertEqual(st["dynamodb"]["by_index"]["t1/byg"]["rcu"], 0.5)

        # a query that finds nothing still costs the minimum
        st = self.measure(lambda: self.ddb.query(TableName="t1", KeyConditionExpression="pk = :p",
                                                 ExpressionAttributeValues={":p": {"S": "empty"}}))
        self.assertDdb(st, rcu=0.5)

    def test_04_transactions_and_batch_write(self):
        def tx():
            self.ddb.transact_write_items(TransactItems=[
                {"Put": {"TableName": "t1", "Item": {"pk": {"S": "tx"}, "sk": {"S": "1"}}}},
                {"Put": {"TableName": "t1", "Item": {"pk": {"S": "tx"}, "sk": {"S": "2"}, "g": {"S": "v"}}}},
            ])
        st = self.measure(tx)
        # 2 x 1 per put; the one index entry once
        self.assertDdb(st, wcu_table=4, wcu_index=1, wcu=5)

        def cancelled():
            with self.assertRaises(self.ddb.exceptions.TransactionCanceledException):
                self.ddb.transact_write_items(TransactItems=[
                    {"ConditionCheck": {"TableName": "t1", "Key": self.key("tx", "1"),
                                        "ConditionExpression": "attribute_not_exists(pk)"}},
                    {"Put": {"TableName": "t1", "Item": {"pk": {"S": "tx"}, "sk": {"S": "3"}}}},
                ])
        st = self.measure(cancelled)
        self.assertDdb(st, transactions_cancelled=1, wcu=2)

        # BatchWriteItem: a 500-byte and a 3.5 KB item -> 1 + 4
        def batch():
            self.ddb.batch_write_item(RequestItems={"t1": [
                {"PutRequest": {"Item": {"pk": {"S": "bw"}, "sk": {"S": "1"}, "d": {"S": "x" * 490}}}},
                {"PutRequest": {"Item": {"pk": {"S": "bw"}, "sk": {"S": "2"}, "d": {"S": "x" * 3574}}}},
            ]})
        st = self.measure(batch)
        self.assertDdb(st, wcu=5)
        st = self.measure(lambda: self.ddb.batch_write_item(RequestItems={"t1": [
            {"DeleteRequest": {"Key": self.key("bw", "1")}}, {"DeleteRequest": {"Key": self.key("bw", "2")}}]}))
        self.assertDdb(st, wcu=5)

    def test_05_table_recreated_with_other_index(self):
        def create(projection):
            self.ddb.create_table(
                TableName="t2", BillingMode="PAY_PER_REQUEST",
                AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                                      {"AttributeName": "g", "AttributeType": "S"}],
                KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                GlobalSecondaryIndexes=[{"IndexName": "byg2", "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"}],
                                         "Projection": {"ProjectionType": projection}}])
        item = {"pk": {"S": "a"}, "g": {"S": "x"}, "data": {"S": "y" * 2000}}
        create("KEYS_ONLY")
        st = self.measure(lambda: self.ddb.put_item(TableName="t2", Item=item))
        self.assertDdb(st, wcu_table=2, wcu_index=1)
        self.ddb.delete_table(TableName="t2")
        create("ALL")
        st = self.measure(lambda: self.ddb.put_item(TableName="t2", Item=item))
        self.assertDdb(st, wcu_table=2, wcu_index=2)
        self.ddb.delete_table(TableName="t2")

    def test_06_sqs(self):
        url = self.sqs.create_queue(QueueName="pricing-q")["QueueUrl"]

        st = self.measure(lambda: self.sqs.send_message_batch(QueueUrl=url, Entries=[
            {"Id": str(i), "MessageBody": f"check {i}"} for i in range(10)]))
        self.assertEqual(st["sqs"]["requests"], 1)
        self.assertEqual(st["sqs"]["by_op"]["SendMessageBatch"], {"calls": 1, "requests": 1, "messages": 10})

        got = []

        def receive():
            deadline = time.monotonic() + 20
            while len(got) < 10 and time.monotonic() < deadline:
                got.extend(self.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10,
                                                    WaitTimeSeconds=1).get("Messages", []))
        st = self.measure(receive)
        self.assertEqual(len(got), 10)
        self.assertEqual(st["sqs"]["by_op"]["ReceiveMessage"]["messages"], 10)
        self.assertEqual(st["sqs"]["requests"], st["sqs"]["by_op"]["ReceiveMessage"]["calls"])

        st = self.measure(lambda: self.sqs.delete_message_batch(QueueUrl=url, Entries=[
            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(got)]))
        self.assertEqual(st["sqs"]["by_op"]["DeleteMessageBatch"]["messages"], 10)

        # a 100 KB message is two 64 KB chunks
        st = self.measure(lambda: self.sqs.send_message(QueueUrl=url, MessageBody="m" * 100_000))
        self.assertEqual(st["sqs"]["requests"], 2)

        # query protocol (form body) is recognised too
        def query_protocol():
            body = b"Action=ListQueues&Version=2012-11-05"
            c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
            c.request("POST", "/", body=body, headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "Authorization": "AWS4-HMAC-SHA256 Credential=AKIDPRICINGTEST/20260101/us-east-1/sqs/aws4_request, "
                                 "SignedHeaders=host, Signature=0"})
            r = c.getresponse()
            r.read()
            c.close()
            self.assertEqual(r.status, 200)
        st = self.measure(query_protocol)
        self.assertEqual(st["sqs"]["by_op"]["ListQueues"]["requests"], 1)

    def test_07_streams(self):
        arn = self.ddb.describe_table(TableName="t1")["Table"]["LatestStreamArn"]

        def read():
            shards = self.streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]
            it = self.streams.get_shard_iterator(StreamArn=arn, ShardId=shards[0]["ShardId"],
                                                 ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
            self.streams.get_records(ShardIterator=it, Limit=1000)
        st = self.measure(read)
        self.assertEqual(st["streams"]["calls"], 3)
        self.assertEqual(st["streams"]["get_records"], 1)
        self.assertAlmostEqual(prices.price(st)["streams"], 0.02 / 100_000)

    def test_08_keep_alive_and_verbatim_forwarding(self):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        headers = {"X-Amz-Target": "DynamoDB_20120810.ListTables", "Content-Type": "application/x-amz-json-1.0",
                   "Authorization": "AWS4-HMAC-SHA256 Credential=AKIDPRICINGTEST/20260101/us-east-1/dynamodb/"
                                    "aws4_request, SignedHeaders=host, Signature=0"}
        c.request("POST", "/", body=b"{}", headers=headers)
        r = c.getresponse()
        first = json.loads(r.read())
        sock = c.sock
        self.assertIsNotNone(sock, "the proxy closed a keep-alive connection")
        self.assertEqual(r.status, 200)
        self.assertIn("t1", first["TableNames"])
        self.assertIsNotNone(r.getheader("Content-Length"))
        c.request("POST", "/", body=b"{}", headers=headers)
        r = c.getresponse()
        r.read()
        self.assertEqual(r.status, 200)
        self.assertIs(c.sock, sock, "second request did not reuse the connection")
        # an error from upstream comes back as is
        c.request("POST", "/", body=b'{"TableName": "missing"}',
                  headers=dict(headers, **{"X-Amz-Target": "DynamoDB_20120810.DescribeTable"}))
        r = c.getresponse()
        body = json.loads(r.read())
        self.assertEqual(r.status, 400)
        self.assertIn("ResourceNotFoundException", body["__type"])
        # something that is neither DynamoDB nor SQS is counted under "other"
        c.request("GET", "/moto-api/")
        r = c.getresponse()
        r.read()
        c.close()
        st = self.control("GET", "/__stats")
        self.assertGreaterEqual(st["other"], 1)
        log = self.control("GET", "/__log?n=3")
        self.assertEqual(len(log), 3)


if __name__ == "__main__":
    unittest.main()
