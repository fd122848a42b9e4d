"""Real SMTP peers on 127.0.0.1 for the email channel's contract tests: aiosmtpd for a well-behaved
(or deliberately refusing) server, and a tiny hand-written server for misbehaviour aiosmtpd cannot be
made to show (dropping the connection after the message content, never replying)."""

from __future__ import annotations

import asyncio
import socket
import ssl
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def self_signed_cert(directory: Path) -> tuple[Path, Path]:
    """A throwaway certificate for 127.0.0.1 and localhost, made with the openssl CLI."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    content: bytes
    peer: Any = None  # the client's (host, port): one per connection


@dataclass
class Handler:
    """aiosmtpd handler that records messages and can answer a given code at one step."""

    received: list[Received] = field(default_factory=list)
    reply_at: dict[str, str] = field(default_factory=dict)  # "MAIL"|"RCPT"|"DATA" -> reply
    refuse_rcpt: dict[str, str] = field(default_factory=dict)  # recipient -> reply

    async def handle_MAIL(self, server: Any, session: Any, envelope: Any, address: str,
                          options: list[str]) -> str:  # fmt: skip
        if "MAIL" in self.reply_at:
            return self.reply_at["MAIL"]
        envelope.mail_from = address
        return "250 OK"

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,
                          options: list[str]) -> str:  # fmt: skip
        if "RCPT" in self.reply_at:
            return self.reply_at["RCPT"]
        if address in self.refuse_rcpt:
            return self.refuse_rcpt[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if "DATA" in self.reply_at:
            return self.reply_at["DATA"]
        self.received.append(
            Received(envelope.mail_from, list(envelope.rcpt_tos), envelope.content, session.peer)
        )
        return "250 2.0.0 Ok: queued as TEST123"


USER, PASSWORD = "shop", "s3cr3t-Pa55word"


def authenticator(
    server: Any, session: Any, envelope: Any, mechanism: str, data: Any
) -> AuthResult:
    ok = (
        isinstance(data, LoginPassword)
        and data.login == USER.encode()
        and (data.password == PASSWORD.encode())
    )
    return AuthResult(success=ok, handled=False)


class AiosmtpdServer:
    def __init__(
        self, handler: Handler, *, tls: ssl.SSLContext | None = None, implicit: bool = False
    ) -> None:
        self.port = free_port()
        kwargs: dict[str, Any] = {}
        if tls is not None and implicit:
            kwargs = {"ssl_context": tls}
        elif tls is not None:
            kwargs = {"tls_context": tls, "require_starttls": True, "authenticator": authenticator,
                      "auth_required": True}  # fmt: skip
        self.controller = Controller(handler, hostname="127.0.0.1", port=self.port, **kwargs)

    def __enter__(self) -> AiosmtpdServer:
        self.controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.controller.stop()


class RawServer:
    """Speaks just enough SMTP, then misbehaves as told.

    behaviour: "drop_after_data" (close once the content's final "." arrives), "silent_after_data"
    (never reply to it), "garbage_after_data" (an unreadable reply to it), "slow_final" (reply 250 after `delay` seconds), "silent_greeting",
    "drop_at_mail", "close_after_first" (accept one message per connection, then close it, as a
    relay's idle timeout does), "421_after_first" (accept one, then answer the next MAIL with 421
    and close).
    """

    def __init__(self, behaviour: str, delay: float = 0.0) -> None:
        self.behaviour = behaviour
        self.delay = delay
        self.contents: list[bytes] = []
        self.connections = 0
        self.port = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> RawServer:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)  # type: ignore[arg-type]
        self.connections += 1
        accepted = 0
        try:
            if self.behaviour == "silent_greeting":
                await asyncio.sleep(5)
                return
            writer.write(b"220 raw ESMTP\r\n")
            while line := await reader.readline():
                verb = line[:4].upper()
                if verb in (b"EHLO", b"HELO"):
                    writer.write(b"250-raw\r\n250 8BITMIME\r\n")
                elif verb == b"MAIL":
                    if self.behaviour == "drop_at_mail":
                        return
                    if self.behaviour == "421_after_first" and accepted:
                        writer.write(b"421 4.4.2 idle too long, closing\r\n")
                        await writer.drain()
                        return
                    writer.write(b"250 OK\r\n")
                elif verb == b"RCPT":
                    writer.write(b"250 OK\r\n")
                elif verb == b"DATA":
                    writer.write(b"354 go ahead\r\n")
                    await writer.drain()
                    content = bytearray()
                    while (chunk := await reader.readline()) and chunk != b".\r\n":
                        content += chunk
                    self.contents.append(bytes(content))
                    if self.behaviour == "drop_after_data":
                        return
                    if self.behaviour == "garbage_after_data":
                        writer.write(b"what?\r\n")
                        await writer.drain()
                        await asyncio.sleep(5)
                        return
                    if self.behaviour == "silent_after_data":
                        await asyncio.sleep(5)
                        return
                    await asyncio.sleep(self.delay)
                    writer.write(b"250 OK queued\r\n")
                    accepted += 1
                    if self.behaviour == "close_after_first":
                        await writer.drain()
                        return
                elif verb == b"RSET":
                    writer.write(b"250 OK\r\n")
                elif verb == b"QUIT":
                    writer.write(b"221 bye\r\n")
                    await writer.drain()
                    return
                else:
                    writer.write(b"502 not implemented\r\n")
                await writer.drain()
        finally:
            writer.close()
