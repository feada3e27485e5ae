#!/usr/bin/env python3
"""A persistent workq handler: `workq-work --persistent QUEUE -- ./persistent-upper.py`.

One JSON request per line on stdin, one JSON reply per line on stdout (flush each one).
Expensive set-up (a model, a connection pool) happens once, before the loop.
"""
import base64
import json
import sys

for line in sys.stdin:
    request = json.loads(line)
    if "payload_base64" in request:          # the payload was not valid UTF-8
        payload = base64.b64decode(request["payload_base64"]).decode("latin-1")
    else:
        payload = request["payload"]
    try:
        if not payload.strip():
            raise ValueError("empty payload")
        reply = {"id": request["id"], "ok": True, "result": payload.upper()}
    except ValueError as error:               # a job that can never succeed: no retry
        reply = {"id": request["id"], "ok": False, "error": str(error), "retry": False}
    except Exception as error:                # anything else: retried with backoff
        reply = {"id": request["id"], "ok": False, "error": repr(error)}
    print(json.dumps(reply), flush=True)
