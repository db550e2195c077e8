"""Sends one UDP datagram with a forged source (root only: a raw socket).

usage: forge_udp.py SRC_ADDR SRC_PORT DST_ADDR DST_PORT HEX_PAYLOAD
IPv4 only; loopback only in this project's tests.
"""
import socket
import struct
import sys

src, sport, dst, dport, payload = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), bytes.fromhex(sys.argv[5])
for addr in (src, dst):
    if not addr.startswith("127."):
        sys.exit("loopback addresses only")
udp = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0x4000, 64, socket.IPPROTO_UDP, 0,
                 socket.inet_aton(src), socket.inet_aton(dst))
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
s.sendto(ip + udp, (dst, 0))
s.close()
