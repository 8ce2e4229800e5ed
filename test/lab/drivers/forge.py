#!/usr/bin/env python3
"""Forged TCP packets from a raw socket, for the labs (test/lab/forged-proof.test.ts).

Run inside the attacker namespace; every source address is forged (TEST-NET only, routed back
into the attacker namespace by the lab, where replies die: these addresses never answer).
Argument: one JSON object.

  {"mode": "syn", "dst": D, "dport": P, "sources": [...], "copies": N, "gapMs": G, "seed": S}
      per source one SYN with a source port and sequence number fixed by (seed, source), sent
      N times G ms apart: the same 4-tuple, the same packet (a duplicate / a retransmission)
  {"mode": "spray", "dst": D, "dport": P, "sources": [...], "attempts": N, "seed": S}
      N attempts, each a fresh SYN from one of the sources (random port and sequence number)
      and one ACK with a guessed acknowledgement number: what a blind forger can do
  {"mode": "mix", "dst": D, "dport": P, "sources": [...], "seed": S}
      per source RST, FIN, ACK, FIN|ACK, RST|ACK, PSH|ACK with data, each with random numbers

Prints one JSON line: {"sent": packets, "seconds": s}.
"""
import json
import random
import socket
import struct
import sys
import time
import zlib

FIN, SYN, RST, PSH, ACK = 0x01, 0x02, 0x04, 0x08, 0x10


def checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


class Sender:
    def __init__(self, dst: str):
        self.v6 = ":" in dst
        self.dst = dst
        self.dst_bytes = socket.inet_pton(socket.AF_INET6 if self.v6 else socket.AF_INET, dst)
        family = socket.AF_INET6 if self.v6 else socket.AF_INET
        # IPPROTO_RAW: we write the IP header ourselves (IPv4: IP_HDRINCL implied; IPv6 likewise)
        self.sock = socket.socket(family, socket.SOCK_RAW, socket.IPPROTO_RAW)
        self.sent = 0

    def send(self, src: str, sport: int, dport: int, seq: int, ack: int, flags: int, payload: bytes = b"") -> None:
        src_bytes = socket.inet_pton(socket.AF_INET6 if self.v6 else socket.AF_INET, src)
        tcp_len = 20 + len(payload)
        header = struct.pack("!HHIIBBHHH", sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF, 5 << 4, flags, 64240, 0, 0)
        if self.v6:
            pseudo = src_bytes + self.dst_bytes + struct.pack("!I3xB", tcp_len, 6)
        else:
            pseudo = src_bytes + self.dst_bytes + struct.pack("!BBH", 0, 6, tcp_len)
        csum = checksum(pseudo + header + payload)
        tcp = header[:16] + struct.pack("!H", csum) + header[18:] + payload
        if self.v6:
            ip = struct.pack("!IHBB", 6 << 28, tcp_len, 6, 64) + src_bytes + self.dst_bytes
            self.sock.sendto(ip + tcp, (self.dst, 0, 0, 0))
        else:
            ip = struct.pack("!BBHHHBBH", 0x45, 0, 20 + tcp_len, 0, 0, 64, 6, 0) + src_bytes + self.dst_bytes
            self.sock.sendto(ip + tcp, (self.dst, 0))
        self.sent += 1


def fixed(seed: int, source: str) -> random.Random:
    return random.Random(zlib.crc32(f"{seed}|{source}".encode()))


def main() -> None:
    o = json.loads(sys.argv[1])
    sender = Sender(o["dst"])
    dport = int(o["dport"])
    seed = int(o.get("seed", 1))
    sources = o["sources"]
    started = time.monotonic()
    mode = o["mode"]
    if mode == "syn":
        copies = int(o.get("copies", 1))
        gap = float(o.get("gapMs", 100)) / 1000
        fixes = {s: fixed(seed, s) for s in sources}
        tuples = {s: (fixes[s].randint(1024, 65535), fixes[s].getrandbits(32)) for s in sources}
        for copy in range(copies):
            if copy:
                time.sleep(gap)
            for source in sources:
                sport, seq = tuples[source]
                sender.send(source, sport, dport, seq, 0, SYN)
    elif mode == "spray":
        rng = random.Random(seed)
        n = len(sources)
        for i in range(int(o["attempts"])):
            source = sources[i % n]
            sport = rng.randint(1024, 65535)
            seq = rng.getrandbits(32)
            sender.send(source, sport, dport, seq, 0, SYN)
            sender.send(source, sport, dport, seq + 1, rng.getrandbits(32), ACK)
    elif mode == "mix":
        rng = random.Random(seed)
        for source in sources:
            for flags, payload in ((RST, b""), (FIN, b""), (ACK, b""), (FIN | ACK, b""), (RST | ACK, b""), (PSH | ACK, b"GET / HTTP/1.0\r\n\r\n")):
                sender.send(source, rng.randint(1024, 65535), dport, rng.getrandbits(32), rng.getrandbits(32), flags, payload)
    else:
        raise SystemExit(f"unknown mode {mode!r}")
    print(json.dumps({"sent": sender.sent, "seconds": round(time.monotonic() - started, 3)}))


if __name__ == "__main__":
    main()
