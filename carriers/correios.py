"""Correios (Brazil) SRO Rastro: tracking for S10 numbers ending in BR.

Wire facts are from `reference/carrier-apis.md` §3: a bearer token from
`POST /token/v1/autentica/cartaopostagem`, then `GET /srorastro/v1/objetos/{codigo}?resultado=T` or
the list form `GET /srorastro/v1/objetos?codigosObjetos=…&resultado=T`. The response parsers here are
pure functions: they take the decoded JSON and return results, and never raise on malformed input.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from carriers.base import (
    InvalidNumber,
    NotFound,
    TemporaryFailure,
    Tracked,
    TrackEvent,
    TrackResult,
)
from carriers.correios_codes import (
    CORRECTION_GROUP,
    event_status,
    normalise_code,
    overall_status,
)
from carriers.numbers import normalise
from carriers.status import Status

CARRIER = "correios"
SOURCE = "Correios"

BRASILIA = ZoneInfo("America/Sao_Paulo")
"""`dtHrCriado` carries no offset; it is Brasília time (§3.3)."""

NOT_FOUND_CODE = "SRO-020"
"""`mensagem` for an object Correios has no record of; the HTTP status is still 200 (§3.3)."""

_S10 = re.compile(r"^[A-Z]{2}\d{9}[A-Z]{2}$")
_MESSAGE_CODE = re.compile(r"^\s*(SRO-\d+)")


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
