"""A loopback WSMan endpoint that unmodified pypsrp talks to, built on psrpcore's server pool.

No Windows host exists here, so this plays one over HTTP on 127.0.0.1 with basic auth: the
SOAP actions Create, Command, Send, Receive, Signal and Delete, each reply's RelatesTo set to the
request's MessageID, and the PSRP messages handled by ``psrpcore.ServerRunspacePool``. It records
every pipeline it receives (script texts and parameters, secure strings decrypted) and answers
as the test's ``behave`` function says: output, errors, warnings, or a failed pipeline.
"""

from __future__ import annotations

import base64
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from xml.etree import ElementTree as ET

import psrpcore
from psrpcore import StreamType
from psrpcore.types import ErrorCategoryInfo, ErrorRecord, NETException, PSInvocationState

NS = {
    "s": "http://www.w3.org/2003/05/soap-envelope",
    "wsa": "http://schemas.xmlsoap.org/ws/2004/08/addressing",
    "wsman": "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd",
    "rsp": "http://schemas.microsoft.com/wbem/wsman/1/windows/shell",
    "wst": "http://schemas.xmlsoap.org/ws/2004/09/transfer",
    "pwsh": "http://schemas.microsoft.com/powershell",
}
SHELL_ACTION = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/"
DONE = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/CommandState/Done"
RUNNING = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/CommandState/Running"


@dataclass
class Received:
    """One pipeline as the server got it: each statement's text and parameters."""

    shell: str
    statements: list[tuple[str, dict[str, Any]]]
    started: float = 0.0
    ended: float = 0.0


@dataclass
class Reply:
    """What a pipeline does: write these, wait, then complete or fail."""

    output: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    progress: list[tuple[str, int]] = field(default_factory=list)  # (status, percent)
    fail: str | None = None
    delay: float = 0.0


Behave = Callable[[Received], Reply]


class _Shell:
    def __init__(self, shell_id: str) -> None:
        self.id = shell_id
        self.pool = psrpcore.ServerRunspacePool()
        self.queues: dict[str | None, bytearray] = {}
        self.done: set[str] = set()
        self.lock = threading.Condition()

    def feed(self, data: bytes, pipeline: uuid.UUID | None = None) -> list[Any]:
        with self.lock:
            self.pool.receive_data(psrpcore.PSRPPayload(data, StreamType.default, pipeline))
            events = []
            while (event := self.pool.next_event()) is not None:
                events.append(event)
            self.flush()
            return events

    def flush(self) -> None:
        """Move what the pool has to send into per-target queues; wake waiting receives."""
        while (payload := self.pool.data_to_send()) is not None:
            key = str(payload.pipeline_id).upper() if payload.pipeline_id else None
            self.queues.setdefault(key, bytearray()).extend(payload.data)
        self.lock.notify_all()

    def take(self, key: str | None, wait: float) -> bytes:
        with self.lock:
            deadline = time.monotonic() + wait
            while not self.queues.get(key) and key not in self.done and time.monotonic() < deadline:
                self.lock.wait(deadline - time.monotonic())
            data = bytes(self.queues.get(key, b""))
            self.queues[key] = bytearray()
            return data


class LoopbackWSMan:
    """``with LoopbackWSMan(behave) as server:`` then connect pypsrp to ``server.port``."""

    def __init__(self, behave: Behave, username: str = "admin", password: str = "P@ss w0rd'") -> None:
        self.behave = behave
        self.username = username
        self.password = password
        self.received: list[Received] = []
        self.requests = 0
        self.shells: dict[str, _Shell] = {}
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                expected = "Basic " + base64.b64encode(f"{server.username}:{server.password}".encode()).decode()
                if self.headers.get("Authorization") != expected:
                    self.send_response(401)
                    self.send_header("WWW-Authenticate", "Basic realm=\"WSMAN\"")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                reply = server.handle(body)
                self.send_response(200)
                self.send_header("Content-Type", "application/soap+xml;charset=UTF-8")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> LoopbackWSMan:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    # --- SOAP ----------------------------------------------------------------------------

    def handle(self, body: bytes) -> bytes:
        with self._lock:
            self.requests += 1
        request = ET.fromstring(body)
        action = request.findtext("s:Header/wsa:Action", namespaces=NS) or ""
        message_id = request.findtext("s:Header/wsa:MessageID", namespaces=NS) or ""
        shell_id = request.findtext("s:Header/wsman:SelectorSet/wsman:Selector[@Name='ShellId']", namespaces=NS)
        name = action.rsplit("/", 1)[-1]
        content = getattr(self, f"_on_{name.lower()}")(request, shell_id)
        response_action = f"{action}Response"
        return (
            f'<s:Envelope xmlns:s="{NS["s"]}" xmlns:wsa="{NS["wsa"]}" xmlns:wsman="{NS["wsman"]}" '
            f'xmlns:rsp="{NS["rsp"]}" xmlns:wst="{NS["wst"]}"><s:Header>'
            f"<wsa:Action>{response_action}</wsa:Action><wsa:MessageID>uuid:{uuid.uuid4()}</wsa:MessageID>"
            f"<wsa:RelatesTo>{message_id}</wsa:RelatesTo></s:Header><s:Body>{content}</s:Body></s:Envelope>"
        ).encode()

    def _on_create(self, request: ET.Element, _: str | None) -> str:
        shell_xml = request.find("s:Body/rsp:Shell", NS)
        shell_id = (shell_xml.get("ShellId") if shell_xml is not None else None) or str(uuid.uuid4()).upper()
        shell = _Shell(shell_id)
        self.shells[shell_id] = shell
        creation = request.findtext("s:Body/rsp:Shell/pwsh:creationXml", namespaces=NS) or ""
        shell.feed(base64.b64decode(creation))
        resource = "http://schemas.microsoft.com/powershell/Microsoft.PowerShell"
        return (
            f"<wst:ResourceCreated><wsa:Address>http://127.0.0.1:{self.port}/wsman</wsa:Address>"
            f"<wsa:ReferenceParameters><wsman:ResourceURI>{resource}</wsman:ResourceURI><wsman:SelectorSet>"
            f'<wsman:Selector Name="ShellId">{shell_id}</wsman:Selector></wsman:SelectorSet>'
            f"</wsa:ReferenceParameters></wst:ResourceCreated>"
            f"<rsp:Shell><rsp:ShellId>{shell_id}</rsp:ShellId><rsp:ResourceUri>{resource}</rsp:ResourceUri>"
            f"<rsp:InputStreams>stdin pr</rsp:InputStreams><rsp:OutputStreams>stdout</rsp:OutputStreams></rsp:Shell>"
        )

    def _on_send(self, request: ET.Element, shell_id: str | None) -> str:
        shell = self.shells[shell_id or ""]
        stream = request.find("s:Body/rsp:Send/rsp:Stream", NS)
        command = stream.get("CommandId") if stream is not None else None
        shell.feed(base64.b64decode(stream.text or "") if stream is not None else b"",
                   uuid.UUID(command) if command else None)
        return "<rsp:SendResponse/>"

    def _on_command(self, request: ET.Element, shell_id: str | None) -> str:
        shell = self.shells[shell_id or ""]
        line = request.find("s:Body/rsp:CommandLine", NS)
        command_id = (line.get("CommandId") if line is not None else None) or str(uuid.uuid4()).upper()
        pipeline = psrpcore.ServerPipeline(shell.pool, uuid.UUID(command_id))
        arguments = request.findtext("s:Body/rsp:CommandLine/rsp:Arguments", namespaces=NS) or ""
        events = shell.feed(base64.b64decode(arguments), uuid.UUID(command_id))
        create = next(e for e in events if isinstance(e, psrpcore.CreatePipelineEvent))
        statements = [(c.command_text, {p[0]: self._plain(shell, p[1]) for p in c.parameters})
                      for c in create.pipeline.commands]
        received = Received(shell.id, statements)
        with self._lock:
            self.received.append(received)
        threading.Thread(target=self._execute, args=(shell, pipeline, command_id.upper(), received),
                         daemon=True).start()
        return f"<rsp:CommandResponse><rsp:CommandId>{command_id}</rsp:CommandId></rsp:CommandResponse>"

    @staticmethod
    def _plain(shell: _Shell, value: Any) -> Any:
        if isinstance(value, psrpcore.types.PSSecureString):
            return value.decrypt()
        return value

    def _execute(self, shell: _Shell, pipeline: Any, key: str, received: Received) -> None:
        received.started = time.monotonic()
        reply = self.behave(received)
        with shell.lock:
            pipeline.start()
            shell.flush()
        if reply.delay:
            time.sleep(reply.delay)
        with shell.lock:
            for text in reply.output:
                pipeline.write_output(text)
            for text in reply.warnings:
                pipeline.write_warning(text)
            for status, percent in reply.progress:
                pipeline.write_progress("MailUsers", 1, status, percent_complete=percent)
            for text in reply.errors:
                pipeline.write_error(NETException(text), ErrorCategoryInfo())
            if reply.fail is not None:
                record = ErrorRecord(Exception=NETException(reply.fail), CategoryInfo=ErrorCategoryInfo())
                pipeline._change_state(PSInvocationState.Failed, record)
            else:
                pipeline.complete()
            received.ended = time.monotonic()
            shell.done.add(key)
            shell.flush()

    def _on_receive(self, request: ET.Element, shell_id: str | None) -> str:
        shell = self.shells[shell_id or ""]
        desired = request.find("s:Body/rsp:Receive/rsp:DesiredStream", NS)
        command = desired.get("CommandId") if desired is not None else None
        key = command.upper() if command else None
        data = shell.take(key, wait=1.0)
        streams = ""
        if data:
            attr = f' CommandId="{command}"' if command else ""
            streams = f'<rsp:Stream Name="stdout"{attr}>{base64.b64encode(data).decode()}</rsp:Stream>'
        state = ""
        if command:
            finished = key in shell.done and not shell.queues.get(key)
            state = f'<rsp:CommandState CommandId="{command}" State="{DONE if finished else RUNNING}"/>'
        return f"<rsp:ReceiveResponse>{streams}{state}</rsp:ReceiveResponse>"

    def _on_signal(self, request: ET.Element, shell_id: str | None) -> str:
        return "<rsp:SignalResponse/>"

    def _on_delete(self, request: ET.Element, shell_id: str | None) -> str:
        self.shells.pop(shell_id or "", None)
        return ""
