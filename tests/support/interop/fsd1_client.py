#!/usr/bin/env python3
"""An independent fsd/1 client, written from docs/PROTOCOL.md alone (Python standard library only).

Usage: fsd1_client.py HOST PORT ROOT
ROOT is the served directory, which this script may inspect to check what the server did.
Runs a list of rule checks against the server and prints one line per check; exits 1 if any failed.
"""

import os
import socket
import struct
import sys

RRQ, WRQ, DAT, ACK, ERR, DRQ = 1, 2, 3, 4, 5, 6


class Conn:
    def __init__(self, host, port):
        self.sock = socket.create_connection((host, port), timeout=10)
        self.buf = b""

    def send(self, data):
        self.sock.sendall(data)

    def _need(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("closed")
            self.buf += chunk

    def packet(self):
        """The next packet as a tuple, or None when the server closed the connection."""
        try:
            self._need(2)
        except EOFError:
            if self.buf:
                raise
            return None
        (op,) = struct.unpack("!H", self.buf[:2])
        if op == DAT:
            self._need(6)
            block, size = struct.unpack("!HH", self.buf[2:6])
            self._need(6 + size)
            data, self.buf = self.buf[6 : 6 + size], self.buf[6 + size :]
            return ("DAT", block, data)
        if op == ACK:
            self._need(4)
            (block,) = struct.unpack("!H", self.buf[2:4])
            self.buf = self.buf[4:]
            return ("ACK", block)
        if op == ERR:
            self._need(4)
            (code,) = struct.unpack("!H", self.buf[2:4])
            while b"\0" not in self.buf[4:]:
                self._need(len(self.buf) + 1)
            end = self.buf.index(b"\0", 4)
            message, self.buf = self.buf[4:end].decode("utf-8", "replace"), self.buf[end + 1 :]
            return ("ERR", code, message)
        raise ValueError(f"server sent opcode {op}")

    def close(self):
        self.sock.close()


def req(op, name):
    return struct.pack("!H", op) + (name if isinstance(name, bytes) else name.encode()) + b"\0"


def dat(block, data):
    return struct.pack("!HHH", DAT, block, len(data)) + data


def ack(block):
    return struct.pack("!HH", ACK, block)


def greeted(host, port):
    c = Conn(host, port)
    p = c.packet()
    assert p[0] == "DAT" and p[1] == 1 and len(p[2]) < 512, p
    assert p[2].startswith(b"Hello from ") and p[2].endswith(b"'s fileserver"), p[2]
    c.send(ack(1))
    return c


def receive(c):
    """DAT 1, 2, ... acknowledged one by one until a short block; the data and the block numbers."""
    data, blocks = b"", []
    while True:
        p = c.packet()
        assert p and p[0] == "DAT", p
        assert p[1] == (len(blocks) + 1) & 0xFFFF, (p[1], len(blocks))
        data += p[2]
        blocks.append(p[1])
        c.send(ack(p[1]))
        if len(p[2]) < 512:
            return data, blocks


def upload(c, name, content):
    c.send(req(WRQ, name))
    assert c.packet() == ("ACK", 0)
    block, at = 1, 0
    while True:
        chunk = content[at : at + 512]
        c.send(dat(block, chunk))
        assert c.packet() == ("ACK", block)
        if len(chunk) < 512:
            return
        block, at = (block + 1) & 0xFFFF, at + 512


def main():
    host, port, root = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    checks = []

    def check(name):
        def run(fn):
            checks.append((name, fn))
            return fn

        return run

    @check("greeting, then DRQ lists the root sorted, KIND SIZE MTIME NAME")
    def _():
        with open(os.path.join(root, "b.txt"), "wb") as f:
            f.write(b"x" * 1234)
        os.makedirs(os.path.join(root, "a-dir"), exist_ok=True)
        c = greeted(host, port)
        c.send(struct.pack("!H", DRQ))
        listing, _ = receive(c)
        lines = listing.decode().splitlines()
        names = [line.split(" ", 3)[3] for line in lines]
        assert names == sorted(names), names
        entry = next(line for line in lines if line.endswith(" b.txt"))
        kind, size, mtime, _ = entry.split(" ", 3)
        assert kind == "f" and size == "1234" and len(mtime) == 20 and mtime.endswith("Z"), entry
        assert any(line.startswith("d ") and line.endswith(" a-dir") for line in lines), lines
        c.close()

    @check("RRQ: exact multiple of 512 ends with an empty DAT; content exact")
    def _():
        content = bytes(range(256)) * 4  # 1024 bytes
        with open(os.path.join(root, "k.bin"), "wb") as f:
            f.write(content)
        c = greeted(host, port)
        c.send(req(RRQ, "k.bin"))
        data, blocks = receive(c)
        assert data == content and blocks == [1, 2, 3], blocks
        c.close()

    @check("WRQ: ACK 0, DAT n answered by ACK n, file appears complete; never replaced (ERR 6)")
    def _():
        content = os.urandom(1500)
        c = greeted(host, port)
        upload(c, "py-upload.bin", content)
        with open(os.path.join(root, "py-upload.bin"), "rb") as f:
            assert f.read() == content
        c.send(req(WRQ, "py-upload.bin"))
        p = c.packet()
        assert p[0] == "ERR" and p[1] == 6, p
        c.send(struct.pack("!H", DRQ))  # still usable
        receive(c)
        c.close()

    @check("names breaking the rules are ERR 2 and the connection stays usable")
    def _():
        c = greeted(host, port)
        for name in ["../etc/passwd", "/etc/passwd", "a//b", "a\\b", "x" * 256, b"\xff\xfe", "a\x01b", "sub/./x"]:
            c.send(req(RRQ, name))
            p = c.packet()
            assert p[0] == "ERR" and p[1] == 2, (name, p)
        c.send(req(RRQ, "no-such-file"))
        p = c.packet()
        assert p[0] == "ERR" and p[1] == 1, p
        c.close()

    @check("violations are ERR 4 and a close: wrong ACK, unknown opcode, DAT outside a transfer, DAT > 512")
    def _():
        with open(os.path.join(root, "v.bin"), "wb") as f:
            f.write(b"v" * 2000)
        provocations = [
            lambda c: (c.send(req(RRQ, "v.bin")), c.packet(), c.send(ack(7))),
            lambda c: c.send(struct.pack("!HH", 9, 0)),
            lambda c: c.send(dat(1, b"abc")),
            lambda c: (c.send(req(WRQ, "big-dat")), c.packet(), c.send(dat(1, b"z" * 513))),
        ]
        for provoke in provocations:
            c = greeted(host, port)
            provoke(c)
            p = c.packet()
            assert p[0] == "ERR" and p[1] == 4, p
            assert c.packet() is None, "expected a close"
            c.close()
        assert not os.path.exists(os.path.join(root, "big-dat"))

    @check("an answer other than ACK 1 to the greeting is ERR 4 and a close")
    def _():
        c = Conn(host, port)
        c.packet()
        c.send(ack(2))
        p = c.packet()
        assert p[0] == "ERR" and p[1] == 4, p
        assert c.packet() is None
        c.close()

    @check("an upload that does not complete leaves no file")
    def _():
        c = greeted(host, port)
        c.send(req(WRQ, "half.bin"))
        assert c.packet() == ("ACK", 0)
        c.send(dat(1, b"h" * 512))
        assert c.packet() == ("ACK", 1)
        c.close()
        # A fresh connection sees no such file (the server may need a moment to notice the close).
        for _ in range(50):
            d = greeted(host, port)
            d.send(req(RRQ, "half.bin"))
            p = d.packet()
            d.close()
            assert p[0] == "ERR" and p[1] == 1, p
        assert not os.path.exists(os.path.join(root, "half.bin"))

    failed = 0
    for name, fn in checks:
        try:
            fn()
            print(f"ok   {name}")
        except Exception as error:  # noqa: BLE001 - report every failure, keep going
            failed += 1
            print(f"FAIL {name}: {error!r}")
    print(f"{len(checks) - failed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
