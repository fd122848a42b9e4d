"""Russian Post operation codes: the one table from (`OperType.Id`, `OperAttr.Id`) to our `Status`.

Source: `reference/carrier-apis.md` §4.4 (the operation directory as kept by the lapaygroup
RussianPost SDK, corroborated by other clients). The batch API names the same numbers `OperTypeID`
and `OperCtgID`. A type's entry under attribute None is its default, used for attributes the table
does not list (and for the attribute-less types, which report 0).
"""

from __future__ import annotations

from collections.abc import Mapping

from carriers.status import Status

S = Status

# (OperType, OperAttr or None for "any other attribute") -> Status.
_TABLE: dict[tuple[int, int | None], Status] = {
    # 1 Приём / acceptance: the parcel is in the post's hands.
    (1, None): S.IN_TRANSIT,
    # 2 Вручение / handed over: final. To the addressee = delivered, to the sender = returned.
    (2, None): S.DELIVERED,
    **{(2, attr): S.DELIVERED for attr in (1, 3, 5, 6, 8, 10, 11, 12, 13)},
    **{(2, attr): S.RETURNED for attr in (2, 4, 7, 9)},
    # 3 Возврат / return: on its way back, whatever the reason (attrs 1–13).
    (3, None): S.RETURNING,
    # 4 Досылка / redirection: moving on, except into storage or the unclaimed pile.
    (4, None): S.IN_TRANSIT,
    (4, 4): S.EXCEPTION,  # запрещено САБ
    (4, 5): S.EXCEPTION,  # передача на временное хранение
    (4, 6): S.EXCEPTION,  # передача в невостребованные
    # 5 Невручение / non-delivery.
    (5, None): S.DELIVERY_FAILURE,
    (5, 1): S.EXCEPTION,  # утрачено (lost, final)
    (5, 2): S.EXCEPTION,  # изъято (seized, final)
    (5, 3): S.IN_TRANSIT,  # засылка (missent, goes on)
    (5, 8): S.EXCEPTION,  # решение таможни
    (5, 9): S.DELIVERY_FAILURE,  # доставка по адресу не осуществляется
    # 6 Хранение / storage at the office: waiting for the addressee.
    (6, None): S.AVAILABLE_FOR_PICKUP,
    (6, 5): S.CUSTOMS_HOLD,  # продление срока выпуска таможней
    # 7 Временное хранение / temporary storage: undeliverable and unreturned.
    (7, None): S.EXCEPTION,
    # 8 Обработка / processing: movement, plus the "waiting for you" attributes.
    (8, None): S.IN_TRANSIT,
    (8, 2): S.AVAILABLE_FOR_PICKUP,  # прибыло в место вручения
    (8, 9): S.AVAILABLE_FOR_PICKUP,  # прибыло в почтомат
    (8, 10): S.AVAILABLE_FOR_PICKUP,  # истекает срок хранения в почтомате
    (8, 14): S.AVAILABLE_FOR_PICKUP,  # прибыло в центр выдачи посылок
    (8, 15): S.OUT_FOR_DELIVERY,  # передано курьеру
    (8, 18): S.OUT_FOR_DELIVERY,  # передано почтальону
    (8, 23): S.AVAILABLE_FOR_PICKUP,  # продление срока хранения
    (8, 24): S.AVAILABLE_FOR_PICKUP,  # направлено извещение
    (8, 25): S.AVAILABLE_FOR_PICKUP,  # доставлено извещение
    (8, 27): S.AVAILABLE_FOR_PICKUP,  # истекает срок хранения (25 дней)
    (8, 28): S.AVAILABLE_FOR_PICKUP,  # … (5 дней)
    (8, 33): S.AVAILABLE_FOR_PICKUP,  # … (23 дня)
    (8, 35): S.AVAILABLE_FOR_PICKUP,  # … (10 дней)
    # 9 import, 10 export of international mail.
    (9, None): S.IN_TRANSIT,
    (10, None): S.IN_TRANSIT,
    # 11 Приём на таможню.
    (11, None): S.CUSTOMS_HOLD,
    # 12 Неудачная попытка вручения / failed attempt (and 42, the second one).
    (12, None): S.DELIVERY_FAILURE,
    (12, 14): S.EXCEPTION,  # повреждено и/или без вложения
    (12, 15): S.CUSTOMS_PAYMENT_DUE,  # в ожидании оплаты сбора
    (12, 23): S.EXCEPTION,  # запрещённые вложения
    (12, 24): S.EXCEPTION,  # отказ в импорте
    (12, 28): S.EXCEPTION,  # утрата
    (42, None): S.DELIVERY_FAILURE,
    (42, 14): S.EXCEPTION,
    (42, 15): S.CUSTOMS_PAYMENT_DUE,
    # 13 Регистрация отправки.
    (13, None): S.IN_TRANSIT,
    # 14 Таможенное оформление / customs clearance.
    (14, None): S.CUSTOMS_HOLD,
    (14, 1): S.IN_TRANSIT,  # выпущено таможней (released)
    (14, 2): S.RETURNING,  # возвращено таможней
    (14, 3): S.CUSTOMS_HOLD,  # осмотрено
    (14, 4): S.EXCEPTION,  # отказ в выпуске
    (14, 5): S.CUSTOMS_PAYMENT_DUE,  # направлено с таможенным уведомлением (pay at the office)
    (14, 6): S.CUSTOMS_PAYMENT_DUE,  # с обязательной уплатой таможенных платежей
    (14, 7): S.CUSTOMS_HOLD,  # требуется досмотр
    (14, 8): S.CUSTOMS_HOLD,  # выпуск приостановлен
    (14, 9): S.EXCEPTION,  # отказ в приёме на таможню
    (14, 10): S.CUSTOMS_HOLD,
    (14, 11): S.CUSTOMS_HOLD,
    (14, 12): S.CUSTOMS_HOLD,  # досмотр завершён
    (14, 13): S.IN_TRANSIT,  # выпуск разрешён, платежи уплачены
    (14, 14): S.CUSTOMS_PAYMENT_DUE,  # отказ в выпуске, платежи не уплачены
    (14, 15): S.CUSTOMS_HOLD,  # декларация не прошла ФЛК
    (14, 16): S.IN_TRANSIT,  # выпущено, средства зарезервированы
    (14, 17): S.CUSTOMS_PAYMENT_DUE,  # отказ в выпуске, ожидается уплата платежей
    (14, 18): S.EXCEPTION,  # отказ по решению должностного лица
    (14, 19): S.CUSTOMS_HOLD,  # требуется предъявление в ТО
    # 15–18: final, neither delivered nor returned.
    (15, None): S.EXCEPTION,  # передача на временное хранение
    (16, None): S.EXCEPTION,  # уничтожение
    (17, None): S.EXCEPTION,  # передача вложения на баланс
    (18, None): S.EXCEPTION,  # регистрация утраты
    (19, None): S.CUSTOMS_HOLD,  # таможенные платежи поступили (paid, not yet released)
    (20, None): S.INFO_RECEIVED,  # регистрация
    (21, None): S.DELIVERED,  # доставка в ящик / в руки / на ресепшн
    (22, None): S.DELIVERY_FAILURE,  # недоставка
    (23, None): S.EXCEPTION,  # поступление на временное хранение
    (24, None): S.CUSTOMS_HOLD,  # продление срока выпуска таможней
    (25, None): S.IN_TRANSIT,  # вскрытие
    (26, None): S.EXCEPTION,  # отмена
    (27, None): S.INFO_RECEIVED,  # получена электронная регистрация (pre-advice)
    (28, None): S.INFO_RECEIVED,  # присвоение идентификатора
    (29, None): S.IN_TRANSIT,  # прохождение ММПО
    (30, None): S.IN_TRANSIT,  # отправка SRM
    (31, None): S.IN_TRANSIT,  # обработка перевозчиком
    (32, None): S.IN_TRANSIT,  # поступление АПО
    (33, None): S.IN_TRANSIT,  # международная обработка
    (34, None): S.IN_TRANSIT,  # электронное уведомление загружено
    (35, None): S.DELIVERY_FAILURE,  # отказ в курьерской доставке
    (36, None): S.IN_TRANSIT,  # уточнение вида оплаты доставки
    (37, None): S.INFO_RECEIVED,  # предварительное оформление
    (38, None): S.DELIVERY_FAILURE,  # задержка для уточнений у отправителя
    (39, None): S.CUSTOMS_HOLD,  # предварительное таможенное декларирование
    (40, None): S.CUSTOMS_HOLD,  # таможенный контроль
    (41, None): S.CUSTOMS_HOLD,  # обработка таможенных платежей (1/2/4: held or charged)
    (41, 3): S.CUSTOMS_PAYMENT_DUE,  # сумма платежа для удержания (to be collected)
    (41, 5): S.CUSTOMS_PAYMENT_DUE,  # сумма платежа рассчитана
    (43, None): S.IN_TRANSIT,  # вручение разрешено
    (44, None): S.EXCEPTION,  # отказ в приёме
}

CODE_TABLE: Mapping[tuple[int, int | None], Status] = _TABLE
"""Every operation of the reference; (type, None) is the type's default for unlisted attributes."""

UNKNOWN_TYPE_STATUS = S.IN_TRANSIT
"""An operation type the directory does not list yet: the post did something, the parcel moves."""


def operation_status(oper_type: int, oper_attr: int | None) -> Status:
    """The status a single operation stands for."""
    if oper_attr is not None:
        found = CODE_TABLE.get((oper_type, oper_attr))
        if found is not None:
            return found
    return CODE_TABLE.get((oper_type, None), UNKNOWN_TYPE_STATUS)


def is_final(oper_type: int, oper_attr: int | None) -> bool:
    """Final per the SDK: 2 (all attributes), 5 with 1 or 2, and 15–18."""
    return oper_type in (2, 15, 16, 17, 18) or (oper_type == 5 and oper_attr in (1, 2))
