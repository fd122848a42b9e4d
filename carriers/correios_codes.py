"""Correios SRO event codes: the one table from (`codigo`, `tipo`) to our `Status`.

Source: `reference/carrier-apis.md` §3.4 (the legacy SRO "Lista de Status de eventos"; the REST API
keeps the same code pairs). The wording of `descricao` changes over time, so everything keys on the
code pair, never on the text.

Two Correios habits the table alone cannot express live in `overall_status`:

* EST events ("Favor desconsiderar a informação anterior") withdraw the event just before them; they
  are corrections, not progress.
* "Fiscalização aduaneira finalizada" (PAR 10/19) means customs is done, but when a tax demand is still
  open (PAR 17 "Aguardando pagamento" or FC 26 "Objeto Tributado" with no "Pagamento confirmado"
  after it) the buyer still has to pay before the parcel moves: CUSTOMS_PAYMENT_DUE.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from carriers.status import Status

S = Status

# The delivery groups: BDE (entrega), BDI (entrega interna), BDR (entrega reversa) share every tipo.
DELIVERY_GROUPS = ("BDE", "BDI", "BDR")

_DELIVERY_TIPOS: Mapping[str, Status] = {
    # Delivered (terminal-success).
    "01": S.DELIVERED,  # Objeto entregue ao destinatário
    "67": S.DELIVERED,  # entregue (endereço vizinho autorizado)
    "68": S.DELIVERED,  # entregue na Caixa de Correios Inteligente
    "70": S.DELIVERED,  # entregue ao destinatário
    # Handed back to the sender (terminal).
    "23": S.RETURNED,  # Objeto entregue ao remetente / devolvido ao remetente
    # Waiting at a pickup point.
    "24": S.AVAILABLE_FOR_PICKUP,  # disponível em Caixa Postal
    # Failed attempt; Correios tries again or holds it for pickup.
    "02": S.DELIVERY_FAILURE,  # carteiro não atendido, aguardar retirada
    "18": S.DELIVERY_FAILURE,  # carteiro não atendido, nova tentativa no sábado
    "19": S.DELIVERY_FAILURE,  # endereço incorreto, sujeito a atraso ou devolução
    "20": S.DELIVERY_FAILURE,  # Carteiro não atendido - Entrega não realizada
    "25": S.DELIVERY_FAILURE,  # empresa sem expediente
    "34": S.DELIVERY_FAILURE,  # numeração irregular, sujeito a atraso ou devolução
    "35": S.DELIVERY_FAILURE,  # coleta/entrega não efetuada, nova tentativa
    "46": S.DELIVERY_FAILURE,  # tentativa não efetuada, próximo dia útil
    "47": S.DELIVERY_FAILURE,  # saída cancelada
    "82": S.DELIVERY_FAILURE,  # necessário complementar endereço
    # Will be returned to the sender.
    "04": S.RETURNING,  # recusado
    "05": S.RETURNING,  # entrega não pode ser efetuada
    "06": S.RETURNING,  # cliente desconhecido
    "07": S.RETURNING,  # endereço incorreto
    "08": S.RETURNING,  # endereço incorreto
    "10": S.RETURNING,  # cliente mudou-se
    "21": S.RETURNING,  # carteiro não atendido, devolução
    "26": S.RETURNING,  # não retirado no prazo
    "36": S.RETURNING,
    "42": S.RETURNING,  # lote incompleto
    "48": S.RETURNING,
    "49": S.RETURNING,  # dimensões
    "64": S.RETURNING,
    "89": S.RETURNING,  # localidade desconhecida
    # Lost, damaged, stolen, seized (terminal-failure).
    "28": S.EXCEPTION,  # avariado
    "37": S.EXCEPTION,  # avariado
    "29": S.EXCEPTION,  # não localizado
    "80": S.EXCEPTION,  # não localizado no fluxo postal
    "98": S.EXCEPTION,  # não localizado
    "50": S.EXCEPTION,  # roubado
    "51": S.EXCEPTION,  # roubado
    "52": S.EXCEPTION,  # roubado
    "43": S.EXCEPTION,  # apreendido por órgão de fiscalização
    "71": S.EXCEPTION,  # apreendido por ANVISA
    "72": S.EXCEPTION,  # apreendido por Bombeiros
    "73": S.EXCEPTION,  # apreendido por Exército
    "74": S.EXCEPTION,  # apreendido por IBAMA
    "75": S.EXCEPTION,  # apreendido por Polícia Federal
    "76": S.EXCEPTION,  # apreendido por Polícia Civil/Militar
    "40": S.EXCEPTION,  # entrada não autorizada pelos órgãos fiscalizadores
    "81": S.EXCEPTION,  # saída não autorizada pelos órgãos fiscalizadores
    "61": S.EXCEPTION,  # refugado
    "62": S.EXCEPTION,  # devolução à origem por determinação da Receita Federal
    # Customs, delivery-group side.
    "54": S.CUSTOMS_PAYMENT_DUE,  # aguardando guia de ICMS importação
    "55": S.CUSTOMS_HOLD,  # solicitação de revisão do tributo
    "56": S.CUSTOMS_HOLD,  # declaração aduaneira ausente/incorreta
    "57": S.IN_TRANSIT,  # revisão de tributo concluída - objeto liberado
    "58": S.CUSTOMS_PAYMENT_DUE,  # revisão concluída - tributo alterado (still to pay)
    "59": S.CUSTOMS_PAYMENT_DUE,  # revisão concluída - tributo mantido (still to pay)
    "77": S.CUSTOMS_HOLD,  # Evento RFB - aguardando DTRAT
    # The buyer did not do what customs asked; nothing moves until someone acts. Same choice as
    # PAR 25: our vocabulary has no "buyer action needed" member, and the reference calls it an
    # exception.
    "83": S.EXCEPTION,  # ação necessária à liberação não realizada
}

# Customs and import flow (code PAR); the key group for China→Brazil.
_PAR_TIPOS: Mapping[str, Status] = {
    "18": S.IN_TRANSIT,  # recebido na unidade de exportação no país de origem
    "15": S.IN_TRANSIT,  # recebido em …
    "16": S.IN_TRANSIT,  # Objeto recebido pelos Correios do Brasil (arrival, not yet customs)
    "20": S.IN_TRANSIT,  # recebido com embalagem danificada (a note; it keeps moving)
    "28": S.IN_TRANSIT,  # encaminhado para a unidade de tratamento
    "21": S.CUSTOMS_HOLD,  # Encaminhado para fiscalização aduaneira
    "22": S.CUSTOMS_HOLD,  # encaminhado para fiscalização no país de destino
    "12": S.CUSTOMS_HOLD,  # informações prestadas pelo cliente em análise
    "14": S.CUSTOMS_HOLD,  # revisão de tributos solicitada pelo cliente
    "27": S.CUSTOMS_HOLD,  # despacho postal pago na origem (nothing due from the buyer)
    "31": S.CUSTOMS_HOLD,  # Pagamento confirmado (still waits for release)
    "32": S.CUSTOMS_HOLD,  # aguardando confirmação de pagamento pela operadora (buyer paid)
    "17": S.CUSTOMS_PAYMENT_DUE,  # Aguardando pagamento (Minhas Importações)
    "11": S.CUSTOMS_PAYMENT_DUE,  # Aguardando pagamento (older code)
    "30": S.CUSTOMS_PAYMENT_DUE,  # aguardando pagamento do despacho postal
    "33": S.CUSTOMS_PAYMENT_DUE,  # pagamento não confirmado pela operadora: pay again
    "10": S.IN_TRANSIT,  # Fiscalização aduaneira finalizada (see overall_status for taxes due)
    "19": S.IN_TRANSIT,  # fiscalização aduaneira finalizada no país de destino
    "34": S.IN_TRANSIT,  # liberado sem tributação
    "42": S.IN_TRANSIT,  # objeto liberado
    "25": S.EXCEPTION,  # Faltam informações. Sua ação é necessária (reference: exception)
    "41": S.EXCEPTION,  # prazo de pagamento encerrado - em análise de destinação
    "23": S.RETURNING,  # aguardando autorização da Receita Federal para devolução
    "24": S.RETURNING,  # devolução autorizada pela Receita Federal
    "26": S.RETURNING,  # destinatário recusou o objeto
    "40": S.RETURNING,  # devolução a pedido
    "13": S.RETURNED,  # devolvido ao país de origem (reference: terminal)
}

_FC_TIPOS: Mapping[str, Status] = {
    "01": S.RETURNING,  # devolvido por solicitação do remetente
    "47": S.RETURNING,  # devolvido por solicitação do remetente
    "03": S.IN_TRANSIT,  # mal encaminhado (rerouted)
    "04": S.DELIVERY_FAILURE,  # endereço incorreto
    "11": S.EXCEPTION,  # destruído com autorização
    "24": S.CUSTOMS_HOLD,  # Em fiscalização pela Receita Federal
    "26": S.CUSTOMS_PAYMENT_DUE,  # RFB - Objeto Tributado - emissão da nota de tributação
    "12": S.CUSTOMS_HOLD,  # encaminhado para fiscalização ANVISA …
    "13": S.CUSTOMS_HOLD,  # fiscalizado ANATEL
    "19": S.CUSTOMS_HOLD,
    "32": S.CUSTOMS_HOLD,
    "33": S.CUSTOMS_HOLD,
    "34": S.CUSTOMS_HOLD,
    "35": S.CUSTOMS_HOLD,
    "36": S.CUSTOMS_HOLD,
    "37": S.CUSTOMS_HOLD,  # … ANATEL / INMETRO / PF / VIGIAGRO / Exército / IBAMA
}

_OTHER: Mapping[tuple[str, str], Status] = {
    ("PO", "01"): S.IN_TRANSIT,  # Objeto postado
    ("PO", "09"): S.IN_TRANSIT,  # postado após o horário limite
    ("RO", "01"): S.IN_TRANSIT,  # Objeto encaminhado / em trânsito
    ("DO", "01"): S.IN_TRANSIT,
    ("DO", "02"): S.IN_TRANSIT,
    ("OEC", "01"): S.OUT_FOR_DELIVERY,  # saiu para entrega ao destinatário
    ("OEC", "09"): S.RETURNING,  # saiu para entrega ao remetente
    ("LDI", "01"): S.AVAILABLE_FOR_PICKUP,  # aguardando retirada no endereço indicado
    ("LDI", "02"): S.AVAILABLE_FOR_PICKUP,  # Caixa Postal variant
    ("LDI", "03"): S.AVAILABLE_FOR_PICKUP,
    ("LDI", "04"): S.AVAILABLE_FOR_PICKUP,
    ("LDI", "11"): S.AVAILABLE_FOR_PICKUP,
    ("LDI", "13"): S.AVAILABLE_FOR_PICKUP,
    ("LDI", "14"): S.AVAILABLE_FOR_PICKUP,
    ("CO", "01"): S.IN_TRANSIT,  # coletado
    ("CO", "05"): S.INFO_RECEIVED,  # 1ª tentativa de coleta: not in Correios' hands yet
    ("CO", "08"): S.DELIVERED,  # Entregue (reverse logistics)
    ("CO", "09"): S.EXCEPTION,  # coleta cancelada
    ("BLQ", "51"): S.CUSTOMS_HOLD,  # bloqueado para revisão de impostos
}

CODE_TABLE: Mapping[tuple[str, str], Status] = {
    **{
        (group, tipo): status
        for group in DELIVERY_GROUPS
        for tipo, status in _DELIVERY_TIPOS.items()
    },
    **{("PAR", tipo): status for tipo, status in _PAR_TIPOS.items()},
    **{("FC", tipo): status for tipo, status in _FC_TIPOS.items()},
    **_OTHER,
}
"""Every (`codigo`, `tipo`) pair of the reference, mapped. The emulator renders scenarios with it."""

# A pair the table does not know falls back on its group: a new customs tipo is still customs, a
# new blocking tipo is still a block. Anything else unknown reads as ordinary movement.
GROUP_DEFAULTS: Mapping[str, Status] = {
    "PAR": S.CUSTOMS_HOLD,
    "BLQ": S.EXCEPTION,  # bloqueio / suspensão de entrega
    "LDI": S.AVAILABLE_FOR_PICKUP,
    "OEC": S.OUT_FOR_DELIVERY,
}

CORRECTION_GROUP = "EST"
"""EST 01–09, "Favor desconsiderar a informação anterior": withdraws the event just before it."""

# An open tax demand that "fiscalização aduaneira finalizada" does not settle by itself.
TAX_DEMANDS = frozenset({("PAR", "17"), ("PAR", "11"), ("PAR", "30"), ("PAR", "33"), ("FC", "26")})
TAX_SETTLED = frozenset({("PAR", "31"), ("PAR", "34"), ("PAR", "27"), ("PAR", "42")})
CUSTOMS_FINISHED = frozenset({("PAR", "10"), ("PAR", "19")})


def normalise_code(codigo: str, tipo: str) -> tuple[str, str]:
    """Upper-case group and a two-digit tipo: some clients print tipo 1 for "01"."""
    tipo = tipo.strip()
    if tipo.isdigit() and len(tipo) < 2:
        tipo = tipo.zfill(2)
    return codigo.strip().upper(), tipo


def event_status(codigo: str, tipo: str) -> Status:
    """The status one event stands for on its own (EST corrections read as IN_TRANSIT here)."""
    key = normalise_code(codigo, tipo)
    found = CODE_TABLE.get(key)
    if found is not None:
        return found
    return GROUP_DEFAULTS.get(key[0], S.IN_TRANSIT)


def effective_codes(codes: Iterable[tuple[str, str]]) -> list[tuple[str, str] | None]:
    """Per event (newest first), its code, or None when an EST correction withdrew it or is one.

    "Desconsiderar a informação anterior" refers to the event recorded just before the correction,
    i.e. the next one in a newest-first list.
    """
    keys = [normalise_code(c, t) for c, t in codes]
    out: list[tuple[str, str] | None] = []
    withdraw_next = False
    for key in keys:
        if key[0] == CORRECTION_GROUP:
            out.append(None)
            withdraw_next = True
        elif withdraw_next:
            out.append(None)
            withdraw_next = False
        else:
            out.append(key)
    return out


def overall_status(codes: Iterable[tuple[str, str]]) -> Status | None:
    """The parcel's status from its event codes, newest first; None when no event counts."""
    live = [key for key in effective_codes(codes) if key is not None]
    if not live:
        return None
    newest = live[0]
    status = event_status(*newest)
    if newest in CUSTOMS_FINISHED and _tax_open(live[1:]):
        return S.CUSTOMS_PAYMENT_DUE
    return status


def _tax_open(older_newest_first: list[tuple[str, str]]) -> bool:
    """Whether the newest tax event before customs finished is a demand nobody has settled."""
    for key in older_newest_first:
        if key in TAX_SETTLED:
            return False
        if key in TAX_DEMANDS:
            return True
    return False
