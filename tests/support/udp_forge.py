"""Sends one UDP datagram on loopback with a forged source port, then counts
the UDP datagrams that arrive on loopback between the given ports for a
while (an ERROR ping-pong shows as thousands). Needs root (raw sockets).

usage: udp_forge.py SRC_PORT DST_PORT PAYLOAD_HEX LISTEN_MS PORT...
prints: the number of datagrams seen between PORT... (the forged one included)
"""
import socket
import struct
import sys
import time

src, dst, payload, listen_ms = int(sys.argv[1]), int(sys.argv[2]), bytes.fromhex(sys.argv[3]), int(sys.argv[4])
ports = {int(p) for p in sys.argv[5:]}
ETH_P_IP = 0x0800
sniff = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_IP))
sniff.bind(("lo", ETH_P_IP))
sniff.settimeout(0.05)

udp = struct.pack("!HHHH", src, dst, 8 + len(payload), 0) + payload  # checksum 0: none (IPv4)
raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_UDP)
raw.sendto(udp, ("127.0.0.1", 0))  # the kernel adds the IP header

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
    sport, dport = struct.unpack("!HH", ip[ihl:ihl + 4])
    if sport in ports and dport in ports:
        seen += 1
print(seen)
