"""Correios (Brazil) SRO Rastro: tracking for S10 numbers ending in BR.

Wire facts are from `reference/carrier-apis.md` §3: a bearer token from
`POST /token/v1/autentica/cartaopostagem`, then `GET /srorastro/v1/objetos/{codigo}?resultado=T` or
the list form `GET /srorastro/v1/objetos?codigosObjetos=…&resultado=T`. The response parsers here are
pure functions: they take the decoded JSON and return results, and never raise on malformed input.
"""

from __future__ import annotations

import asyncio
import base64
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

import httpx

from carriers.base import (
    AdapterSettings,
    CarrierAlarm,
    Clock,
    InvalidNumber,
    NotFound,
    RateLimit,
    TemporaryFailure,
    Tracked,
    TrackEvent,
    TrackResult,
)
from carriers.breaker import CircuitBreaker
from carriers.correios_codes import (
    CORRECTION_GROUP,
    event_status,
    normalise_code,
    overall_status,
)
from carriers.http import RetryPolicy
from carriers.httpadapter import HttpAdapter, MalformedResponse
from carriers.numbers import normalise
from carriers.ratelimit import Limiter
from carriers.status import Status

CARRIER = "correios"
SOURCE = "Correios"

BRASILIA = ZoneInfo("America/Sao_Paulo")
"""`dtHrCriado` carries no offset; it is Brasília time (§3.3)."""

NOT_FOUND_CODE = "SRO-020"
"""`mensagem` for an object Correios has no record of; the HTTP status is still 200 (§3.3)."""

_S10 = re.compile(r"^[A-Z]{2}\d{9}[A-Z]{2}$")
_MESSAGE_CODE = re.compile(r"^\s*(SRO-\d+)")
# How a spent request allowance is worded is not documented [R]; a 401/403 naming it is not a
# token problem, so no new token is fetched for it.
_QUOTA_WORDS = re.compile(r"\b(cota|quota|limite)\b", re.IGNORECASE)


def looks_trackable(number: str) -> bool:
    """Whether Correios could know the number at all: SRO objects are 13-character S10 codes.

    The check digit is not enforced: carriers accept numbers that fail it (§6.1), so only the shape
    decides, and the format check saves a request (and quota) on numbers that can never be found.
    """
    return bool(_S10.match(normalise(number)))


# --- tracking response ----------------------------------------------------------------------


def parse_objects(body: Any, requested: Sequence[str]) -> list[TrackResult]:
    """One result per requested number from a decoded `/srorastro/v1/objetos` response.

    Objects are matched to requests by `codObjeto`. A requested number the answer leaves out is a
    TemporaryFailure: Correios did not say it does not know the number, it said nothing.
    """
    objects = body.get("objetos") if isinstance(body, Mapping) else None
    by_number: dict[str, Mapping[str, Any]] = {}
    if isinstance(objects, list):
        for obj in objects:
            if isinstance(obj, Mapping) and isinstance(obj.get("codObjeto"), str):
                by_number[normalise(obj["codObjeto"])] = obj
    results: list[TrackResult] = []
    for number in requested:
        obj = by_number.get(normalise(number))
        if obj is None:
            results.append(TemporaryFailure(number, "Correios answer did not include the number"))
        else:
            results.append(parse_object(obj, number))
    return results


def parse_object(obj: Mapping[str, Any], number: str) -> TrackResult:
    """One `objetos[]` entry: `eventos` (newest first) or a `mensagem` instead."""
    message = obj.get("mensagem")
    raw_events = obj.get("eventos")
    if not isinstance(raw_events, list) or not raw_events:
        return _message_result(number, message if isinstance(message, str) else "")
    pairs: list[tuple[Mapping[str, Any], tuple[str, str], datetime]] = []
    for raw in raw_events:
        parsed = _event_basics(raw)
        if parsed is not None:
            pairs.append((raw, *parsed))
    if not pairs:
        return TemporaryFailure(number, "Correios sent events none of which could be read")
    # Newest first as Correios sends them; the stable sort only repairs an out-of-order answer.
    pairs.sort(key=lambda item: item[2], reverse=True)
    codes = [code for _, code, _ in pairs]
    events: list[TrackEvent] = []
    for index, (raw, code, when) in enumerate(pairs):
        if code[0] == CORRECTION_GROUP:
            # A correction stands for whatever is in force once it has taken effect.
            status = overall_status(codes[index:]) or Status.INFO_RECEIVED
        else:
            status = event_status(*code)
        events.append(
            TrackEvent(
                occurred_at=when,
                status=status,
                raw_code=raw_code(*code),
                description=_description(raw),
                location=_location(raw.get("unidade")),
                source=SOURCE,
            )
        )
    status = overall_status(codes) or Status.INFO_RECEIVED
    newest_live = next(
        (e.raw_code for e, c in zip(events, codes, strict=True) if c[0] != CORRECTION_GROUP),
        events[0].raw_code,
    )
    return Tracked(
        number=number,
        status=status,
        raw_status=newest_live,
        events=tuple(events),
        carrier=CARRIER,
    )


def raw_code(codigo: str, tipo: str) -> str:
    """How a Correios code pair is kept beside our status: "BDE-01"."""
    return f"{codigo}-{tipo}"


def _message_result(number: str, message: str) -> TrackResult:
    match = _MESSAGE_CODE.match(message)
    code = match.group(1) if match else ""
    lowered = message.lower()
    if code == NOT_FOUND_CODE or "não encontrado" in lowered or not message:
        return NotFound(number, message)
    # Reported wording for malformed codes ("Objeto inválido") [R]; the code is not documented.
    if "inválid" in lowered or "invalid" in lowered:
        return InvalidNumber(number, message)
    return TemporaryFailure(number, f"Correios: {message}")


def _event_basics(raw: Any) -> tuple[tuple[str, str], datetime] | None:
    if not isinstance(raw, Mapping):
        return None
    codigo, tipo, created = raw.get("codigo"), raw.get("tipo"), raw.get("dtHrCriado")
    if isinstance(tipo, int) and not isinstance(tipo, bool):
        tipo = str(tipo)
    if not (isinstance(codigo, str) and isinstance(tipo, str) and isinstance(created, str)):
        return None
    when = parse_brasilia_time(created)
    if when is None or not codigo.strip():
        return None
    return normalise_code(codigo, tipo), when


def parse_brasilia_time(text: str) -> datetime | None:
    """`dtHrCriado` ("2024-03-15T14:19:48", Brasília, no offset) as aware UTC; None if unreadable."""
    try:
        parsed = datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=BRASILIA)
    return parsed.astimezone(UTC)


def _description(raw: Mapping[str, Any]) -> str:
    parts = [raw.get("descricao"), raw.get("detalhe")]
    return " ".join(p.strip() for p in parts if isinstance(p, str) and p.strip())


def _location(unit: Any) -> str:
    """The unit's "CITY/UF" address, else the unit's name, else the unit's name (e.g. "HONG KONG")."""
    if not isinstance(unit, Mapping):
        return ""
    address = unit.get("endereco")
    if isinstance(address, Mapping):
        city, state = address.get("cidade"), address.get("uf")
        city = city.strip() if isinstance(city, str) else ""
        state = state.strip() if isinstance(state, str) else ""
        if city:
            return f"{city}/{state}" if state else city
    name = unit.get("nome")
    return name.strip() if isinstance(name, str) else ""


def error_messages(body: Any) -> list[str]:
    """The `msgs` of an HTTP error body (400/401/403/404), or [] when it has none."""
    msgs = body.get("msgs") if isinstance(body, Mapping) else None
    if isinstance(msgs, list):
        return [m for m in msgs if isinstance(m, str)]
    if isinstance(msgs, str):
        return [msgs]
    return []


# --- token response -------------------------------------------------------------------------

TOKEN_LIFETIME_FALLBACK = timedelta(hours=23)
"""Used when `expiraEm` is missing or unreadable; tokens last about 24 h (§3.1) [C]."""


@dataclass(frozen=True)
class Token:
    """A bearer token and the moment Correios stops accepting it (aware UTC)."""

    value: str
    expires_at: datetime

    def fresh(self, now: datetime, margin: timedelta) -> bool:
        """Whether the token is still good for at least `margin` from `now`."""
        return bool(self.value) and now + margin < self.expires_at


def parse_token(body: Any, now: datetime) -> Token | None:
    """The token answer (HTTP 201 `{"token", "expiraEm", ...}`); None when there is no token.

    `expiraEm` is read as Brasília time when it carries no offset [R: the captures show no offset].
    """
    if not isinstance(body, Mapping):
        return None
    value = body.get("token")
    if not isinstance(value, str) or not value:
        return None
    expires = body.get("expiraEm")
    expires_at = parse_brasilia_time(expires) if isinstance(expires, str) else None
    if expires_at is None:
        expires_at = now + TOKEN_LIFETIME_FALLBACK
    return Token(value, expires_at)


# --- the adapter ------------------------------------------------------------------------------

TOKEN_PATH = "token/v1/autentica/cartaopostagem"
TOKEN_PATH_BASIC_ONLY = "token/v1/autentica"  # variant without a postage card [R]
OBJECTS_PATH = "srorastro/v1/objetos"


class CorreiosAdapter(HttpAdapter):
    """Correios SRO Rastro with a cached bearer token.

    Credentials (`AdapterSettings`): `api_key` is the Meu Correios user (or CNPJ), `secret` the API
    access code ("código de acesso"); `postage_card` is the contract's cartão de postagem, sent to
    `/token/v1/autentica/cartaopostagem` as §3.1 documents. Without a card the adapter uses the
    Basic-only `/token/v1/autentica` variant the reference reports [R].

    The token is fetched on first use, reused until `refresh_margin` before its `expiraEm`, and
    fetched again once if Correios answers 401/403 anyway (revoked, clock skew). A second refusal,
    or a refused token request, is a CarrierAlarm: only a person can fix credentials.
    """

    name = "correios"
    batch_size = 50  # the list form's reported maximum per call [R]
    # Correios publishes no rate limit (§3, §7) [R]; two requests a second is well inside what the
    # public clients use and still tracks 100 parcels a second through the list form.
    rate_limit = RateLimit(per_second=2.0)
    refresh_margin = timedelta(minutes=5)

    def __init__(
        self,
        settings: AdapterSettings,
        *,
        postage_card: str = "",
        clock: Clock | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        limiter: Limiter | None = None,
        retry: RetryPolicy | None = None,
        breaker: CircuitBreaker | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        super().__init__(
            settings,
            clock=clock,
            transport=transport,
            limiter=limiter,
            retry=retry,
            breaker=breaker,
            sleep=sleep,
        )
        self.postage_card = postage_card
        self._token: Token | None = None
        self._token_lock = asyncio.Lock()

    def auth_headers(self) -> dict[str, str]:
        # Reportedly enforced by the API (SRO-018) [R]; JSON either way.
        return {"Accept": "application/json", "Accept-Language": "pt-BR"}

    # -- token ---------------------------------------------------------------------------------

    async def bearer(self) -> str:
        """A token good for at least `refresh_margin`; fetched at most once at a time."""
        async with self._token_lock:
            token = self._token
            if token is None or not token.fresh(self.clock(), self.refresh_margin):
                token = await self._fetch_token()
                self._token = token
            return token.value

    def forget_token(self, value: str) -> None:
        """Drop the cached token after Correios refused it (unless another call already renewed it)."""
        if self._token is not None and self._token.value == value:
            self._token = None

    async def _fetch_token(self) -> Token:
        basic = base64.b64encode(
            f"{self.settings.api_key}:{self.settings.secret}".encode()
        ).decode()
        headers = {"Authorization": f"Basic {basic}"}
        if self.postage_card:
            response = await self.request(
                "POST", TOKEN_PATH, headers=headers, json={"numero": self.postage_card}
            )
        else:
            response = await self.request("POST", TOKEN_PATH_BASIC_ONLY, headers=headers)
        if response.status_code in (400, 401, 403):
            detail = "; ".join(error_messages(_json_or_none(response))) or "no detail"
            raise CarrierAlarm(
                self.name, f"token request refused (HTTP {response.status_code}): {detail}"
            )
        if response.status_code not in (200, 201):
            raise MalformedResponse(f"token endpoint answered HTTP {response.status_code}")
        token = parse_token(_json(response), self.clock())
        if token is None:
            raise MalformedResponse("token endpoint answered without a token")
        return token

    # -- tracking ------------------------------------------------------------------------------

    async def track_batch(self, numbers: Sequence[str]) -> list[TrackResult]:
        results: dict[str, TrackResult] = {}
        asked: list[str] = []
        for number in numbers:
            if looks_trackable(number):
                asked.append(number)
            else:
                results[number] = InvalidNumber(number, "Correios tracks 13-character S10 codes")
        if asked:
            for result in await self._objects(asked):
                results[result.number] = result
        return [results[n] for n in numbers]

    async def _objects(self, numbers: Sequence[str]) -> list[TrackResult]:
        response = await self._get_authorised(numbers)
        if response.status_code == 200:
            return parse_objects(_json(response), numbers)
        detail = (
            "; ".join(error_messages(_json_or_none(response))) or f"HTTP {response.status_code}"
        )
        if response.status_code == 404:
            body = _json_or_none(response)
            if isinstance(body, Mapping) and isinstance(body.get("objetos"), list):
                return parse_objects(body, numbers)
            return [NotFound(n, detail) for n in numbers]
        if response.status_code == 400:
            if len(numbers) > 1:
                # One bad code can spoil a list request; ask one by one so the others still count.
                singles: list[TrackResult] = []
                for number in numbers:
                    singles.extend(await self._objects([number]))
                return singles
            return [InvalidNumber(numbers[0], detail)]
        raise MalformedResponse(f"objetos answered HTTP {response.status_code}: {detail}")

    async def _get_authorised(self, numbers: Sequence[str]) -> httpx.Response:
        """GET the objects with the bearer token; one fresh token and one retry after a 401/403."""
        if len(numbers) == 1:
            path = f"{OBJECTS_PATH}/{quote(normalise(numbers[0]), safe='')}"
            params: list[tuple[str, str]] = [("resultado", "T")]
        else:
            path = OBJECTS_PATH
            params = [("codigosObjetos", normalise(n)) for n in numbers] + [("resultado", "T")]
        for attempt in range(2):
            token = await self.bearer()
            response = await self.request(
                "GET", path, params=params, headers={"Authorization": f"Bearer {token}"}
            )
            if response.status_code not in (401, 403):
                return response
            messages = error_messages(_json_or_none(response))
            if any(_QUOTA_WORDS.search(m) for m in messages):
                raise CarrierAlarm(self.name, f"request quota spent: {'; '.join(messages)}")
            self.forget_token(token)
            if attempt == 1:
                detail = "; ".join(error_messages(_json_or_none(response))) or "no detail"
                raise CarrierAlarm(
                    self.name,
                    f"tracking refused with a fresh token (HTTP {response.status_code}): {detail}",
                )
        raise AssertionError("unreachable")  # pragma: no cover


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError as exc:
        raise MalformedResponse(f"not JSON: {exc}") from exc


def _json_or_none(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None
