"""A producer and consumer outside Sluice for the schema-registry tests (fastavro + urllib).

produce REGISTRY SUBJECT < jobs.jsonl
    each input line is {"schema": <Avro schema>, "record": <record>}: registers the schema under
    SUBJECT (once per schema) and prints the Confluent-framed value as base64, one per line.
decode REGISTRY < values.b64
    each input line is a base64 framed value: fetches the writer schema by the id in it and prints
    the record as JSON.
"""
import base64
import io
import json
import struct
import sys
import urllib.request

import fastavro


def http(method, url, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"content-type": "application/vnd.schemaregistry.v1+json"})
    with urllib.request.urlopen(req, timeout=30) as res:
        return json.loads(res.read())


def produce(registry, subject):
    ids = {}
    import decimal
    hook = lambda d: decimal.Decimal(d["$decimal"]) if "$decimal" in d else d  # noqa: E731
    for line in sys.stdin:
        job = json.loads(line, object_hook=hook)
        key = json.dumps(job["schema"], sort_keys=True)
        if key not in ids:
            ids[key] = http("POST", f"{registry}/subjects/{subject}/versions",
                            {"schema": json.dumps(job["schema"])})["id"]
        parsed = fastavro.parse_schema(job["schema"])
        buf = io.BytesIO()
        buf.write(b"\x00" + struct.pack(">I", ids[key]))
        fastavro.schemaless_writer(buf, parsed, job["record"])
        print(base64.b64encode(buf.getvalue()).decode())


def default(v):
    import datetime, decimal
    if isinstance(v, decimal.Decimal):
        return str(v)
    if isinstance(v, datetime.datetime):
        return v.astimezone(datetime.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    if isinstance(v, bytes):
        return base64.b64encode(v).decode()
    raise TypeError(repr(v))


def decode(registry):
    schemas = {}
    for line in sys.stdin:
        raw = base64.b64decode(line.strip())
        assert raw[0] == 0, "magic byte"
        (sid,) = struct.unpack(">I", raw[1:5])
        if sid not in schemas:
            schemas[sid] = fastavro.parse_schema(json.loads(http("GET", f"{registry}/schemas/ids/{sid}")["schema"]))
        rec = fastavro.schemaless_reader(io.BytesIO(raw[5:]), schemas[sid])
        print(json.dumps(rec, default=default, separators=(",", ":")))


if __name__ == "__main__":
    if sys.argv[1] == "produce":
        produce(sys.argv[2], sys.argv[3])
    else:
        decode(sys.argv[2])
