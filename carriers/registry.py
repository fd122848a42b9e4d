"""Adapter registry: build an adapter from its name and settings.

How to add an adapter
---------------------
1. Write `carriers/<name>.py` with a subclass of `carriers.httpadapter.HttpAdapter` declaring
   `name`, `batch_size` and `rate_limit`, an `auth_headers()` if the carrier uses header auth, and
   `track_batch(numbers)` (send through `self.request(...)`, parse with one code table, raise
   `MalformedResponse` for unreadable answers, `CarrierAlarm` for auth/quota problems). Keep the
   base constructor signature: `(settings, *, clock=None, transport=None, limiter=None,
   retry=None, breaker=None, sleep=asyncio.sleep)`.
2. Add one line to `ADAPTERS` below: `"<name>": "carriers.<name>:<ClassName>"`.
3. Write its emulator in `carriers/emulators/<name>.py` (a subclass of
   `carriers.emulators.server.EmulatorServer`); `carriers.emulators.sandbox` finds it by module name.
4. Add `tests/carriers/test_contract_<name>.py` subclassing `tests.carriers.contract.AdapterContract`
   (see that module's docstring), so the adapter passes the same contract as every other.
5. If the number shape should route to it, add a row to `carriers.routing.POST_BY_COUNTRY`.

Entries are "module:Class" strings imported on first use, so one broken or missing adapter module
never stops the others from loading.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from carriers.base import Adapter

if TYPE_CHECKING:  # only in signatures: the config check reads ADAPTERS without the HTTP stack
    import httpx

    from carriers.base import AdapterSettings, Clock
    from carriers.breaker import CircuitBreaker
    from carriers.http import RetryPolicy
    from carriers.ratelimit import Limiter

ADAPTERS: dict[str, str] = {
    "seventeentrack": "carriers.seventeentrack:SeventeenTrackAdapter",
    "correios": "carriers.correios:CorreiosAdapter",
    "russianpost": "carriers.russianpost:RussianPostAdapter",
}


class UnknownAdapter(LookupError):
    """No adapter is registered under that name."""


def adapter_class(name: str) -> type[Adapter]:
    """The adapter class registered as `name` (imported on first use)."""
    try:
        target = ADAPTERS[name]
    except KeyError:
        raise UnknownAdapter(
            f"no carrier adapter named {name!r}; known: {sorted(ADAPTERS)}"
        ) from None
    module_name, _, class_name = target.partition(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    if not (isinstance(cls, type) and issubclass(cls, Adapter)):
        raise TypeError(f"{target} is not an Adapter")
    return cls


def build_adapter(
    name: str,
    settings: AdapterSettings,
    *,
    clock: Clock | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    limiter: Limiter | None = None,
    retry: RetryPolicy | None = None,
    breaker: CircuitBreaker | None = None,
) -> Adapter:
    """A ready adapter for carrier `name`. Close it with `await adapter.aclose()`."""
    cls = adapter_class(name)
    adapter: Adapter = cls(  # type: ignore[call-arg]
        settings, clock=clock, transport=transport, limiter=limiter, retry=retry, breaker=breaker
    )
    return adapter
