"""Sends one UDP datagram on loopback with a forged source address and port
(a raw socket: root only); with LISTEN_MS, then counts the UDP datagrams that
arrive on loopback between the given ports for that long (an ERROR or echo
ping-pong shows as thousands).

usage: udp_forge.py SRC_ADDR SRC_PORT DST_ADDR DST_PORT PAYLOAD_HEX [LISTEN_MS PORT...]
prints, with LISTEN_MS: the number of datagrams seen between PORT... (the forged one included)
IPv4 only; loopback only.
"""
import socket
import struct
import sys
import time

src, sport, dst, dport = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
payload = bytes.fromhex(sys.argv[5])
listen_ms = int(sys.argv[6]) if len(sys.argv) > 6 else None
ports = {int(p) for p in sys.argv[7:]}
for addr in (src, dst):
    if not addr.startswith("127."):
        sys.exit("loopback addresses only")

ETH_P_IP = 0x0800
sniff = None
if listen_ms is not None:  # listening before the datagram goes, to count it too
    sniff = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_IP))
    sniff.bind(("lo", ETH_P_IP))
    sniff.settimeout(0.05)

udp = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload  # checksum 0: none (IPv4)
ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0x4000, 64, socket.IPPROTO_UDP, 0,
                 socket.inet_aton(src), socket.inet_aton(dst))
raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
raw.sendto(ip + udp, (dst, 0))
raw.close()

if sniff is not None:
    seen = 0
    end = time.monotonic() + listen_ms / 1000
    while time.monotonic() < end and seen < 1_000_000:
        try:
            frame, addr = sniff.recvfrom(70000)
        except socket.timeout:
            continue
        if addr[2] == socket.PACKET_OUTGOING:
            continue  # loopback shows each datagram twice: count it arriving
        ip = frame[14:] if len(frame) > 14 and frame[12:14] == b"\x08\x00" else frame
        if len(ip) < 28 or ip[9] != 17:
            continue
        ihl = (ip[0] & 0x0F) * 4
        sp, dp = struct.unpack("!HH", ip[ihl:ihl + 4])
        if sp in ports and dp in ports:
            seen += 1
    print(seen)
