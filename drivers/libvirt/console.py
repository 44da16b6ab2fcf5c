"""A domain's console through libvirt: ``virDomainOpenConsole`` on a
non-blocking ``virStream``, pumped by libvirt's event loop thread
(events.run_loop).

commands/domain_console.py waits on a file descriptor (``select``), which a
virStream has not: :class:`LibvirtConsoleStream` is one end of a socket
pair whose other end the event loop thread joins to the stream (what the
stream has is written to the pair; what the pair has is sent on the stream,
kept while the stream would block).  The stream's end is the pair's end (EOF),
so ``console`` ends as on the QEMU driver when the domain stops.  A stream
that fails instead (libvirtd aborts it when another ``console --force``
takes the console over) makes ``recv`` raise OPERATION_FAILED with the QEMU
driver's words.
"""
from __future__ import annotations

import socket
import threading

from virtctl.drivers.libvirt.errors import mapped
from virtctl.errors import OperationFailed


class LibvirtConsoleStream:
    def __init__(self, lv, conn, dom, *, devname: str | None, force: bool, safe: bool):
        from virtctl.drivers.libvirt.events import run_loop

        self.lv, self.name = lv, dom.name()
        run_loop(lv)
        flags = (lv.VIR_DOMAIN_CONSOLE_FORCE if force else 0) | (lv.VIR_DOMAIN_CONSOLE_SAFE if safe else 0)
        with mapped(lv):
            self._st = conn.newStream(lv.VIR_STREAM_NONBLOCK)
            try:
                dom.openConsole(devname, self._st, flags)
            except BaseException:
                try:
                    self._st.abort()
                except lv.libvirtError:
                    pass
                raise
        self._ours, self._theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        self._theirs.setblocking(False)
        self._mu = threading.Lock()
        self._to_stream = b""    # from the pair, not yet taken by the stream
        self._from_stream = b""  # from the stream, not yet taken by the pair
        self._failed: str | None = None
        self._done = False
        self._handle = None
        self._st.eventAddCallback(self._stream_events(), self._on_stream, None)
        self._handle = lv.virEventAddHandle(self._theirs.fileno(), lv.VIR_EVENT_HANDLE_READABLE,
                                            self._on_pair, None)

    # --- the event loop thread's side --------------------------------------------
    def _stream_events(self) -> int:
        lv = self.lv
        ev = lv.VIR_STREAM_EVENT_ERROR | lv.VIR_STREAM_EVENT_HANGUP
        if len(self._from_stream) < (1 << 20):  # the reader is behind: stop reading until it catches up
            ev |= lv.VIR_STREAM_EVENT_READABLE
        if self._to_stream:
            ev |= lv.VIR_STREAM_EVENT_WRITABLE
        return ev

    def _pair_events(self) -> int:
        lv = self.lv
        ev = lv.VIR_EVENT_HANDLE_READABLE if len(self._to_stream) < (1 << 20) else 0
        if self._from_stream:
            ev |= lv.VIR_EVENT_HANDLE_WRITABLE
        return ev

    def _update(self) -> None:
        if self._done:
            return
        try:
            self._st.eventUpdateCallback(self._stream_events())
        except self.lv.libvirtError:
            pass
        if self._handle is not None:
            self.lv.virEventUpdateHandle(self._handle, self._pair_events())

    def _finish(self, failed: str | None = None) -> None:
        """The stream is over: flush what it gave to the pair, then EOF."""
        if self._done:
            return
        self._done, self._failed = True, failed
        try:
            self._st.eventRemoveCallback()
        except self.lv.libvirtError:
            pass
        if self._handle is not None:
            self.lv.virEventRemoveHandle(self._handle)
            self._handle = None
        try:
            self._theirs.setblocking(True)
            self._theirs.settimeout(5)
            if self._from_stream:
                self._theirs.sendall(self._from_stream)
            self._theirs.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def _on_stream(self, _st, events: int, _opaque) -> None:
        lv = self.lv
        with self._mu:
            if self._done:
                return
            try:
                if events & lv.VIR_STREAM_EVENT_READABLE:
                    while len(self._from_stream) < (1 << 20):
                        data = self._st.recv(65536)
                        if data == -2:  # would block
                            break
                        if not data:  # the end: the domain stopped, the console closed
                            self._finish()
                            return
                        self._from_stream += data
                if events & lv.VIR_STREAM_EVENT_WRITABLE and self._to_stream:
                    n = self._st.send(self._to_stream)
                    if n != -2 and n > 0:
                        self._to_stream = self._to_stream[n:]
                if events & (lv.VIR_STREAM_EVENT_ERROR | lv.VIR_STREAM_EVENT_HANGUP) and \
                        not events & lv.VIR_STREAM_EVENT_READABLE:
                    self._finish("hangup" if events & lv.VIR_STREAM_EVENT_HANGUP else "error")
                    return
            except lv.libvirtError as exc:
                self._finish(exc.get_error_message() or "stream error")
                return
            self._flush_pair()
            self._update()

    def _flush_pair(self) -> None:
        if self._from_stream:
            try:
                n = self._theirs.send(self._from_stream)
                self._from_stream = self._from_stream[n:]
            except BlockingIOError:
                pass
            except OSError:  # our end closed: nobody reads any more
                self._finish("closed")

    def _on_pair(self, _watch, _fd, events: int, _opaque) -> None:
        lv = self.lv
        with self._mu:
            if self._done:
                return
            if events & lv.VIR_EVENT_HANDLE_WRITABLE:
                self._flush_pair()
            if events & (lv.VIR_EVENT_HANDLE_READABLE | lv.VIR_EVENT_HANDLE_HANGUP):
                try:
                    data = self._theirs.recv(65536)
                except BlockingIOError:
                    data = None
                except OSError:
                    data = b""
                if data == b"":  # our end closed
                    self._finish("closed")
                    return
                if data:
                    self._to_stream += data
            self._update()

    # --- the console's side (commands/domain_console.py) --------------------------
    def fileno(self) -> int:
        return self._ours.fileno()

    def recv(self, n: int) -> bytes:
        data = self._ours.recv(n)
        if not data and self._failed not in (None, "hangup", "closed"):
            raise OperationFailed(
                f"operation failed: the console of domain '{self.name}' was taken over by another session "
                f"(console --force) or failed: {self._failed}")
        return data

    def sendall(self, data: bytes) -> None:
        self._ours.sendall(data)

    def shutdown(self, how: int) -> None:
        self._ours.shutdown(how)

    def setblocking(self, flag: bool) -> None:
        self._ours.setblocking(flag)

    def close(self) -> None:
        lv = self.lv
        with self._mu:
            was_done = self._done
            self._finish("closed")
        if not was_done:  # as virsh's console: the stream is aborted, not finished
            try:
                self._st.abort()
            except lv.libvirtError:
                pass
        for s in (self._ours, self._theirs):
            try:
                s.close()
            except OSError:
                pass
