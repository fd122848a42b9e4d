"""A minimal emulator for testing the shared machinery: answers `{"ok": true, "now": ...}`."""

from __future__ import annotations

from carriers.emulators.faults import FaultKind
from carriers.emulators.scenario import format_time
from carriers.emulators.server import EmulatorServer, Request, Response


class EchoEmulator(EmulatorServer):
    name = "echo"
    prefix = "/api"

    def handle(self, request: Request) -> Response:
        if request.fault is FaultKind.AUTH:
            return Response.json({"error": "unauthorized"}, 401)
        parcel = self.scenario.get(request.endpoint.strip("/"))
        visible = [e.status.value for e in parcel.visible(self.now())] if parcel else None
        return Response.json({"ok": True, "now": format_time(self.now()), "events": visible})
