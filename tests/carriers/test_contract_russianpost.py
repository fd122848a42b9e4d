"""Russian Post passes the adapter contract through its emulator (single mode, the free plan)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from carriers.emulators.russianpost import RussianPostEmulator
from carriers.russianpost import raw_code
from carriers.russianpost_codes import CODE_TABLE
from carriers.status import Status
from tests.carriers.contract import AdapterContract, s10


class TestRussianPostContract(AdapterContract):
    adapter_name = "russianpost"
    emulator_class = RussianPostEmulator
    # (type, None) is a type's default; the emulator serves it as attribute 0, as Russian Post does
    # for the attribute-less operations.
    mapped_codes: ClassVar[Mapping[str, Status]] = {
        raw_code(t, a): status for (t, a), status in CODE_TABLE.items()
    }
    invalid_number = "1234"

    def number(self, i: int) -> str:
        return s10(i, "RU")

    def emulator_options(self) -> dict[str, Any]:
        # The mapping test asks for ~190 numbers at once; the daily cap has tests of its own.
        return {"daily_limit": None}

    def parcel(self, number: str, *events: dict[str, Any], **extra: Any) -> dict[str, Any]:
        # The shared helper ships to Brazil; the emulator only knows parcels bound for Russia.
        return {**super().parcel(number, *events, **extra), "destination": "RU"}
