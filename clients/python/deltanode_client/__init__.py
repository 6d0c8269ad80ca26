"""A client for a deltanode node's HTTP API (standard library only).

    from deltanode_client import Client
    node = Client("http://127.0.0.1:7700", token=None)
    node.op("visits", {"type": "counter", "op": "inc", "by": 1})
    for event in node.feed():          # resumes after a dropped connection or a node restart
        print(event["id"], event["key"], event.get("value"))

Every method answers the JSON the API answers (typed in `deltanode_client.schema`, generated from
the node's OpenAPI document) or raises `ApiError` with the status and the node's message.
"""

import json
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Dict, Iterator, List, Optional

from .schema import (
    AccessToken,
    BatchAnswer,
    CheckpointBody,
    HealthBody,
    KeyType,
    ObjectBody,
    Operation,
)

__all__ = ["Client", "ApiError"]


class ApiError(Exception):
    """An error answer: `status` and the node's `error` message."""

    def __init__(self, status: int, error: str):
        super().__init__(f"{status}: {error}")
        self.status = status
        self.error = error


class Client:
    """One node's API at `api` (`http://` or `https://`), with its bearer `token` if it has one;
    `cafile` names a CA (or self-signed) certificate to trust for `https://`."""

    def __init__(self, api: str = "http://127.0.0.1:7700", token: Optional[str] = None,
                 timeout: float = 10.0, cafile: Optional[str] = None):
        self.api = api.rstrip("/")
        self.token = token
        self.timeout = timeout
        self._ssl = ssl.create_default_context(cafile=cafile) if cafile else None

    # The objects ---------------------------------------------------------------------------

    def objects(self) -> List[KeyType]:
        return self._json("GET", "/v1/objects")

    def get(self, key: str, **query: Any) -> ObjectBody:
        """An object; `limit`/`after` for a page, `contains` (JSON) or `field` as the API takes."""
        return self._json("GET", f"/v1/objects/{_quote(key)}", query=query)

    def op(self, key: str, operation: Operation, prefer: Optional[str] = None) -> ObjectBody:
        """Applies `operation` to `key`; durable on the node when this returns."""
        headers = {"Prefer": f"return={prefer}"} if prefer else {}
        return self._json("POST", f"/v1/objects/{_quote(key)}", body=operation, headers=headers)

    def batch(self, ops: List[Dict[str, Any]]) -> BatchAnswer:
        """Applies `ops` (each an operation with its `key`) atomically."""
        return self._json("POST", "/v1/batch", body={"ops": ops})

    def state(self) -> Dict[str, Any]:
        return self._json("GET", "/v1/state")

    def conflicts(self) -> List[Dict[str, Any]]:
        return self._json("GET", "/v1/conflicts")

    # The node ------------------------------------------------------------------------------

    def health(self) -> HealthBody:
        return self._json("GET", "/health")

    def node(self) -> Dict[str, Any]:
        return self._json("GET", "/v1/node")

    def peers(self) -> List[Dict[str, Any]]:
        return self._json("GET", "/v1/peers")

    def sync(self) -> Dict[str, Any]:
        return self._json("POST", "/v1/sync")

    def sync_history(self, since: Optional[int] = None) -> Dict[str, Any]:
        """What the node sent since it started: cumulative counters, a step apart."""
        return self._json("GET", "/v1/sync/history", query={"since": since} if since else None)

    def metrics(self, openmetrics: bool = False) -> str:
        accept = "application/openmetrics-text" if openmetrics else "text/plain"
        return self._request("GET", "/metrics", headers={"Accept": accept}).decode()

    def openapi(self) -> Dict[str, Any]:
        return self._json("GET", "/v1/openapi.json")

    def access_token(self) -> AccessToken:
        return self._json("POST", "/v1/tokens")

    # Checkpoints ---------------------------------------------------------------------------

    def checkpoint(self, label: str) -> CheckpointBody:
        return self._json("POST", "/v1/checkpoints", body={"label": label})

    def checkpoints(self) -> List[CheckpointBody]:
        return self._json("GET", "/v1/checkpoints")

    def rollback(self, label: str, partial: bool = False) -> Dict[str, Any]:
        return self._json("POST", "/v1/rollback", body={"label": label, "partial": partial})

    # The change feed -----------------------------------------------------------------------

    def feed(self, last_event_id: Optional[int] = None, values_full: bool = False,
             reconnect: bool = True, give_up_after: float = 60.0) -> Iterator[Dict[str, Any]]:
        """The change feed after `last_event_id` (everything the node holds with `None`), as
        dicts with `event` (`change`, `conflict`, `reset`, `lagged`) and the event's fields.

        A dropped connection — the node restarting, a `lagged` cut-off — is resumed from the
        last id seen, after the `retry:` delay the node asks for; it gives up (raising the last
        error) after `give_up_after` seconds without a connection."""
        last = last_event_id
        retry = 1.0
        down_since = None
        while True:
            headers = {"Accept": "text/event-stream"}
            if last is not None:
                headers["Last-Event-ID"] = str(last)
            query = {"values": "full"} if values_full else {}
            try:
                response = self._open("GET", "/v1/events", headers=headers, query=query,
                                      timeout=None)
            except (ApiError, OSError) as e:
                if isinstance(e, ApiError) and e.status not in (502, 503, 504):
                    raise
                if not reconnect:
                    raise
                down_since = down_since or time.monotonic()
                if time.monotonic() - down_since > give_up_after:
                    raise
                time.sleep(retry)
                continue
            down_since = None
            try:
                for event in _sse(response):
                    if "retry" in event:
                        retry = event["retry"] / 1000.0
                        continue
                    if event.get("id") is not None:
                        last = event["id"]
                    yield event
            except OSError:
                pass
            finally:
                response.close()
            if not reconnect:
                return
            time.sleep(retry)

    # Plumbing ------------------------------------------------------------------------------

    def _json(self, method: str, path: str, body: Any = None, headers=None, query=None) -> Any:
        return json.loads(self._request(method, path, body, headers, query) or b"null")

    def _request(self, method, path, body=None, headers=None, query=None) -> bytes:
        with self._open(method, path, body, headers, query, timeout=self.timeout) as r:
            return r.read()

    def _open(self, method, path, body=None, headers=None, query=None, timeout=None):
        url = self.api + path
        if query:
            url += "?" + urllib.parse.urlencode(query)
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(url, data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        if self.token:
            req.add_header("Authorization", f"Bearer {self.token}")
        for k, v in (headers or {}).items():
            req.add_header(k, v)
        try:
            return urllib.request.urlopen(req, timeout=timeout, context=self._ssl)
        except urllib.error.HTTPError as e:
            raw = e.read()
            try:
                error = json.loads(raw).get("error", raw.decode(errors="replace"))
            except (ValueError, AttributeError):
                error = raw.decode(errors="replace")
            raise ApiError(e.code, error) from None


def _quote(key: str) -> str:
    return urllib.parse.quote(key, safe="")


def _sse(response) -> Iterator[Dict[str, Any]]:
    """Server-Sent Events from `response`: each event's data (JSON) with `event` and `id`; a
    `retry:` alone as `{"retry": ms}`."""
    name, data, ident, retry = None, [], None, None
    for raw in response:
        line = raw.decode().rstrip("\r\n")
        if line == "":
            if data:
                event = json.loads("\n".join(data))
                if not isinstance(event, dict):
                    event = {"data": event}
                event.setdefault("event", name or "change")
                if name:
                    event["event"] = name
                if ident is not None:
                    event["id"] = int(ident)
                yield event
            elif retry is not None:
                yield {"retry": retry}
            name, data, ident, retry = None, [], None, None
        elif line.startswith(":"):
            continue
        else:
            field, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if field == "data":
                data.append(value)
            elif field == "event":
                name = value
            elif field == "id":
                ident = value
            elif field == "retry" and value.isdigit():
                retry = int(value)
