"""One HTTP GET for every read of a service, Prometheus or an OpenAPI document: a timeout, a
cap on what is read, any HTTP status returned as an answer, and no answer turned into one
exception whose text finishes the caller's sentence (``f"{url} {exc}"``).

(The local staging target's health polling keeps its own plain-socket GET in
``targets/local/probe.py``: it must not go through a proxy and runs many times a second.)
"""

from __future__ import annotations

from dataclasses import dataclass

#: Default cap on a body read: health, version and Prometheus answers are far smaller.
MAX_BODY = 16 * 1024 * 1024


class NoAnswer(Exception):
    """The URL gave no HTTP answer. The text is ``could not be reached (<reason>)`` or
    ``could not be read (<error>)``; ``reason`` alone is the cause."""

    def __init__(self, text: str, reason: str) -> None:
        super().__init__(text)
        self.reason = reason


@dataclass(frozen=True)
class Answer:
    """An HTTP answer, whatever its status."""

    status: int
    body: bytes
    #: The body was longer than the cap: ``body`` holds its first ``max_bytes``.
    truncated: bool = False


def http_get(url: str, timeout: float, max_bytes: int = MAX_BODY) -> Answer:
    """GET ``url`` (http or https, proxies as configured in the environment); an error status
    is an :class:`Answer` too. :class:`NoAnswer` when nothing answered in ``timeout`` seconds."""
    # Here, not at the top: urllib.request loads http.client and ssl (a few ms), and every protocol
    # run imports this module while most ask no service anything over HTTP.
    import http.client
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            status, raw = int(response.status), bytes(response.read(max_bytes + 1))
    except urllib.error.HTTPError as exc:
        try:
            raw = bytes(exc.read(max_bytes + 1))
        except OSError:
            raw = b""
        status = int(exc.code)
    except urllib.error.URLError as exc:
        raise NoAnswer(f"could not be reached ({exc.reason})", str(exc.reason)) from None
    except ValueError as exc:  # urllib's word for a malformed URL
        raise NoAnswer(f"could not be reached ({exc})", str(exc)) from None
    except (OSError, http.client.HTTPException) as exc:  # a timeout while reading, a broken answer
        raise NoAnswer(f"could not be read ({exc})", str(exc)) from None
    return Answer(status, raw[:max_bytes], truncated=len(raw) > max_bytes)
