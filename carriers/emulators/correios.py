"""Correios SRO Rastro on loopback: expiring bearer tokens and `objetos` rendered from the scenario.

Endpoints (paths as on api.correios.com.br, reference §3):

* `POST /token/v1/autentica/cartaopostagem` (Basic user:access code, body `{"numero": card}`) and
  the Basic-only `POST /token/v1/autentica` → 201 `{"token", "expiraEm", "ambiente", ...}`. Tokens
  expire `token_lifetime` after issue on the virtual clock; `revoke_tokens()` kills them early.
* `GET /srorastro/v1/objetos/{codigo}` and `GET /srorastro/v1/objetos?codigosObjetos=…` (repeated or
  comma-joined, at most `max_batch`) → the §3.3 envelope, events newest first, times in Brasília.

Each scenario event becomes one Correios event: the code pair in `raw["correios"]` ("DO/01") if the
scenario gives one, otherwise the default pair for its status, chosen so that the adapter's code
table maps it back to the same status. Carrier faults: `auth` answers 401, `quota` answers 403
naming the spent quota (Correios publishes no quota behaviour [R]), `unknown` makes every object
SRO-020.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, ClassVar

from carriers.correios import BRASILIA
from carriers.correios_codes import event_status, normalise_code
from carriers.emulators.faults import FaultKind
from carriers.emulators.scenario import Scenario, ScenarioEvent, ScenarioParcel
from carriers.emulators.server import EmulatorServer, Request, Response
from carriers.numbers import normalise
from carriers.status import Status

BRASILIA_FORMAT = "%Y-%m-%dT%H:%M:%S"

# Status -> the (codigo, tipo) Correios would most often show for it; see the module docstring.
DEFAULT_CODES: Mapping[Status, tuple[str, str]] = {
    Status.INFO_RECEIVED: ("CO", "05"),
    Status.IN_TRANSIT: ("RO", "01"),
    Status.CUSTOMS_HOLD: ("PAR", "21"),
    Status.CUSTOMS_PAYMENT_DUE: ("PAR", "17"),
    Status.OUT_FOR_DELIVERY: ("OEC", "01"),
    Status.AVAILABLE_FOR_PICKUP: ("LDI", "01"),
    Status.DELIVERY_FAILURE: ("BDE", "20"),
    Status.DELIVERED: ("BDE", "01"),
    Status.RETURNING: ("BDE", "04"),
    Status.RETURNED: ("BDE", "23"),
    Status.EXCEPTION: ("BDE", "80"),
}

DESCRIPTIONS: Mapping[tuple[str, str], str] = {
    ("CO", "05"): "Objeto aguardando postagem",
    ("RO", "01"): "Objeto em trânsito - por favor aguarde",
    ("PAR", "21"): "Encaminhado para fiscalização aduaneira",
    ("PAR", "17"): "Aguardando pagamento",
    ("OEC", "01"): "Objeto saiu para entrega ao destinatário",
    ("LDI", "01"): "Objeto aguardando retirada no endereço indicado",
    ("BDE", "20"): "Carteiro não atendido - Entrega não realizada",
    ("BDE", "01"): "Objeto entregue ao destinatário",
    ("BDE", "04"): "Objeto recusado pelo destinatário - será devolvido ao remetente",
    ("BDE", "23"): "Objeto entregue ao remetente",
    ("BDE", "80"): "Objeto não localizado no fluxo postal",
}

NOT_FOUND_MESSAGE = "SRO-020: Objeto não encontrado na base de dados dos Correios."
INVALID_MESSAGE = "SRO-019: Objeto inválido."
# Correios documents no quota behaviour [R]; a contract whose request allowance is spent is
# emulated as a 403 naming the quota, which the adapter must report to a person.
QUOTA_MESSAGE = "Cota de requisições do contrato excedida"


def code_for(event: ScenarioEvent) -> tuple[str, str] | None:
    """The code pair the emulator serves for a scenario event; None for statuses Correios never shows."""
    raw = event.raw_code(CorreiosEmulator.name)
    if raw:
        for sep in ("/", "-", " "):
            if sep in raw:
                codigo, tipo = raw.split(sep, 1)
                return normalise_code(codigo, tipo)
    return DEFAULT_CODES.get(event.status)


class CorreiosEmulator(EmulatorServer):
    """The SRO Rastro API and its token endpoint, on a virtual clock."""

    name: ClassVar[str] = "correios"
    prefix: ClassVar[str] = ""

    token_lifetime = timedelta(hours=24)
    max_batch = 50

    def __init__(
        self,
        scenario: Scenario | Mapping[str, Any] | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        now: datetime | None = None,
        credentials: tuple[str, str] | None = ("test-token", "test-secret"),
    ) -> None:
        # (user, access code) the token endpoint accepts; None accepts any non-empty pair.
        self.credentials = credentials
        super().__init__(scenario, host=host, port=port, now=now)

    def reset_state(self) -> None:
        self.tokens: dict[str, datetime] = {}
        self.tokens_issued = 0
        self.postage_cards: list[str | None] = []
        self.refused = 0

    def state(self) -> dict[str, Any]:
        return {
            "tokens_issued": self.tokens_issued,
            "live_tokens": sum(1 for exp in self.tokens.values() if exp > self.now()),
            "postage_cards": list(self.postage_cards),
            "refused": self.refused,
        }

    def revoke_tokens(self) -> None:
        """Invalidate every issued token, as a password change or a Correios restart does."""
        with self.lock:
            self.tokens.clear()

    # -- dispatch ------------------------------------------------------------------------------

    def handle(self, request: Request) -> Response:
        path = request.path.rstrip("/")
        if path in ("/token/v1/autentica/cartaopostagem", "/token/v1/autentica"):
            if request.method != "POST":
                return _error(405, "Método não permitido")
            return self._token(request, with_card=path.endswith("cartaopostagem"))
        if path == "/srorastro/v1/objetos" or path.startswith("/srorastro/v1/objetos/"):
            if request.method != "GET":
                return _error(405, "Método não permitido")
            return self._objects(request, path)
        return _error(404, f"Recurso não encontrado: {path}")

    def _token(self, request: Request, *, with_card: bool) -> Response:
        if request.fault is FaultKind.AUTH or not self._basic_ok(request.headers):
            self.refused += 1
            return _error(401, "Usuário ou código de acesso inválido")
        card: str | None = None
        if with_card:
            try:
                body = request.json()
            except ValueError:
                return _error(400, "Corpo da requisição inválido")
            number = body.get("numero") if isinstance(body, Mapping) else None
            if not isinstance(number, str) or not number.strip():
                return _error(400, "Cartão de postagem não informado")
            card = number
        value = secrets.token_urlsafe(24)
        issued = self.now()
        expires = issued + self.token_lifetime
        self.tokens[value] = expires
        self.tokens_issued += 1
        self.postage_cards.append(card)
        answer: dict[str, Any] = {
            "ambiente": "PRODUCAO",
            "id": "emulator",
            "perfil": "PJ",
            "emissao": _brasilia(issued),
            "expiraEm": _brasilia(expires),
            "zoneOffset": "-03:00",
            "token": value,
        }
        if card is not None:
            answer["cartaoPostagem"] = {"numero": card, "contrato": "9912345678", "dr": 20}
        return Response.json(answer, 201)

    def _basic_ok(self, headers: Mapping[str, str]) -> bool:
        auth = headers.get("authorization", "")
        if not auth.startswith("Basic "):
            return False
        try:
            user, _, code = base64.b64decode(auth[6:]).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return False
        if self.credentials is not None:
            return (user, code) == self.credentials
        return bool(user and code)

    def _bearer_ok(self, headers: Mapping[str, str]) -> bool:
        auth = headers.get("authorization", "")
        if not auth.startswith("Bearer "):
            return False
        expires = self.tokens.get(auth[7:])
        return expires is not None and self.now() < expires

    def _objects(self, request: Request, path: str) -> Response:
        if request.fault is FaultKind.AUTH or not self._bearer_ok(request.headers):
            self.refused += 1
            return _error(401, "Token inválido ou expirado")
        if request.fault is FaultKind.QUOTA:
            return _error(403, QUOTA_MESSAGE)
        if path == "/srorastro/v1/objetos":
            numbers = [
                normalise(part)
                for value in request.query.get("codigosObjetos", [])
                for part in value.split(",")
                if part.strip()
            ]
        else:
            numbers = [normalise(path.rsplit("/", 1)[-1])]
        if not numbers:
            return _error(400, "Informe ao menos um objeto")
        self.stats.record_batch(request.path, len(numbers))
        if len(numbers) > self.max_batch:
            return _error(400, f"Quantidade máxima de objetos por consulta: {self.max_batch}")
        unknown = request.fault is FaultKind.UNKNOWN
        objects = [self._object(n, unknown=unknown) for n in numbers]
        return Response.json(
            {
                "versao": "3.5.38",
                "quantidade": len(objects),
                "resultado": "Todos os Eventos",
                "objetos": objects,
            }
        )

    def _object(self, number: str, *, unknown: bool) -> dict[str, Any]:
        parcel = None if unknown else self.scenario.get(number)
        if parcel is not None and parcel.destination not in (None, "BR"):
            parcel = None  # another country's post delivers it; Correios never saw it
        if parcel is not None and parcel.invalid:
            return {"codObjeto": number, "mensagem": INVALID_MESSAGE}
        events = self._events(parcel) if parcel is not None else []
        if not events:
            return {"codObjeto": number, "mensagem": NOT_FOUND_MESSAGE}
        return {
            "codObjeto": number,
            "tipoPostal": {"sigla": number[:2], "descricao": "OBJETO INTERNACIONAL"},
            "dtPrevista": None,
            "eventos": events,
        }

    def _events(self, parcel: ScenarioParcel) -> list[dict[str, Any]]:
        rendered: list[dict[str, Any]] = []
        for event in parcel.visible(self.now()):
            code = code_for(event)
            if code is None:
                continue
            rendered.append(self._event(event, code, parcel))
        rendered.reverse()  # Correios lists the newest first
        return rendered

    def _event(
        self, event: ScenarioEvent, code: tuple[str, str], parcel: ScenarioParcel
    ) -> dict[str, Any]:
        if event.leg == "first_mile":
            unit: dict[str, Any] = {
                "nome": event.location or parcel.origin,
                "tipo": "País",
                "endereco": {},
            }
        else:
            city, _, state = (event.location or "CURITIBA/PR").partition("/")
            unit = {
                "tipo": "Unidade de Tratamento",
                "endereco": {"cidade": city.strip(), "uf": state.strip() or "PR"},
            }
        return {
            "codigo": code[0],
            "tipo": code[1],
            # Brasília local time without an offset, whatever the event's own zone.
            "dtHrCriado": _brasilia(event.at),
            "descricao": event.description or DESCRIPTIONS.get(code, "Objeto em trânsito"),
            "unidade": unit,
        }


def _brasilia(moment: datetime) -> str:
    return moment.astimezone(BRASILIA).strftime(BRASILIA_FORMAT)


def _error(status: int, message: str) -> Response:
    return Response.json({"msgs": [message]}, status)


def _check_defaults() -> None:
    # The reverse table must be the inverse of the adapter's table, or the contract cannot hold.
    for status, code in DEFAULT_CODES.items():
        if event_status(*code) is not status:  # pragma: no cover - a coding error
            raise AssertionError(f"{code} maps to {event_status(*code)}, not {status}")


_check_defaults()
