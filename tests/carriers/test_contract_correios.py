"""Correios passes the adapter contract through its emulator."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from carriers.correios import raw_code
from carriers.correios_codes import CODE_TABLE
from carriers.emulators.correios import CorreiosEmulator
from carriers.status import Status
from tests.carriers.contract import AdapterContract, s10


class TestCorreiosContract(AdapterContract):
    adapter_name = "correios"
    emulator_class = CorreiosEmulator
    # Every pair of the table, in the "BDE-01" form the adapter keeps as TrackEvent.raw_code (the
    # emulator reads the same form from a scenario's raw["correios"]).
    mapped_codes: ClassVar[Mapping[str, Status]] = {
        raw_code(*pair): status for pair, status in CODE_TABLE.items()
    }
    invalid_number = "1234"

    def number(self, i: int) -> str:
        return s10(i, "BR", service="LB")
