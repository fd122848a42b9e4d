"""17TRACK passes the adapter contract through its emulator."""

from __future__ import annotations

from carriers.emulators.server import EmulatorServer
from carriers.emulators.seventeentrack import SeventeenTrackEmulator
from carriers.seventeentrack_codes import STATUS_TABLE
from tests.carriers.contract import AdapterContract, s10


class TestSeventeenTrackContract(AdapterContract):
    adapter_name = "seventeentrack"
    emulator_class = SeventeenTrackEmulator
    mapped_codes = STATUS_TABLE
    invalid_number = "1234"

    def number(self, i: int) -> str:
        return s10(i, "CN")

    def prepare(self, emulator: EmulatorServer, numbers: list[str]) -> None:
        assert isinstance(emulator, SeventeenTrackEmulator)
        emulator.register(*numbers)
