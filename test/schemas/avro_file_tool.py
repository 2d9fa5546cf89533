"""Avro object container files written and read outside Sluice (fastavro), for the file-format tests.

write OUT CODEC SYNC_INTERVAL < job.json
    job is {"schema": <Avro schema>, "records": [...]}; {"$decimal": "12.50"} stands for a Decimal.
    Writes OUT with that block codec, cutting a block every SYNC_INTERVAL bytes.
read IN
    prints the file's records as JSON lines (decimals and times as text, bytes as base64).
"""
import base64
import datetime
import decimal
import json
import sys

import fastavro


def default(v):
    if isinstance(v, decimal.Decimal):
        return str(v)
    if isinstance(v, datetime.datetime):
        return v.astimezone(datetime.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    if isinstance(v, datetime.date):
        return v.isoformat()
    if isinstance(v, bytes):
        return base64.b64encode(v).decode()
    raise TypeError(repr(v))


def write(out, codec, interval):
    hook = lambda d: decimal.Decimal(d["$decimal"]) if "$decimal" in d else d  # noqa: E731
    job = json.loads(sys.stdin.read(), object_hook=hook)
    with open(out, "wb") as f:
        fastavro.writer(f, fastavro.parse_schema(job["schema"]), job["records"], codec=codec,
                        sync_interval=int(interval))


def read(path):
    with open(path, "rb") as f:
        for rec in fastavro.reader(f):
            print(json.dumps(rec, default=default, separators=(",", ":")))


if __name__ == "__main__":
    if sys.argv[1] == "write":
        write(sys.argv[2], sys.argv[3], sys.argv[4])
    else:
        read(sys.argv[2])
