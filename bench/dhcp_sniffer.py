#!/usr/bin/env python3
"""Print every DHCP packet seen in this network namespace, with the kernel's receive timestamp.

    dhcp_sniffer.py [--interface NAME] [--timeout SECONDS]

Run inside a namespace (ip netns exec NS python3 dhcp_sniffer.py). Opens an AF_PACKET socket (all
interfaces, or one), asks for SO_TIMESTAMPNS, and writes one JSON object per DHCP packet to stdout:
    {"t": ns since the epoch, "if": interface, "dir": "in"|"out", "type": DHCP message type,
     "xid": transaction id, "chaddr": client MAC, "yiaddr": offered address}
Outgoing packets are seen too (pkttype PACKET_OUTGOING). The first line is {"ready": true} once the
socket is open. Stops on SIGTERM/SIGINT or after --timeout seconds. Standard library only.
"""
import argparse
import json
import select
import signal
import socket
import struct
import sys
import time

ETH_P_ALL = 0x0003
SO_TIMESTAMPNS = 35
PACKET_OUTGOING = 4


def dhcp_fields(frame):
    """The DHCP fields of an Ethernet/IPv4/UDP frame on ports 67/68, or None."""
    if len(frame) < 14 + 20 + 8 + 240 or frame[12:14] != b"\x08\x00":
        return None
    ip = frame[14:]
    header = (ip[0] & 0x0F) * 4
    if ip[0] >> 4 != 4 or ip[9] != 17 or len(ip) < header + 8 + 240:
        return None
    source_port, destination_port = struct.unpack("!HH", ip[header:header + 4])
    if {source_port, destination_port} - {67, 68}:
        return None
    dhcp = ip[header + 8:]
    if dhcp[236:240] != b"\x63\x82\x53\x63":
        return None
    message_type = None
    index = 240
    while index + 1 < len(dhcp) and dhcp[index] != 255:
        code = dhcp[index]
        if code == 0:
            index += 1
            continue
        length = dhcp[index + 1]
        if code == 53 and length == 1 and index + 2 < len(dhcp):
            message_type = dhcp[index + 2]
        index += 2 + length
    return {
        "type": message_type,
        "xid": struct.unpack("!I", dhcp[4:8])[0],
        "chaddr": ":".join(f"{b:02x}" for b in dhcp[28:34]),
        "yiaddr": socket.inet_ntoa(dhcp[16:20]),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--interface")
    parser.add_argument("--timeout", type=float, default=600.0)
    options = parser.parse_args()

    stop = False

    def request_stop(*_):
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    if options.interface:
        sock.bind((options.interface, 0))
    sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    print(json.dumps({"ready": True}), flush=True)
    deadline = time.monotonic() + options.timeout
    while not stop and time.monotonic() < deadline:
        try:
            readable, _, _ = select.select([sock], [], [], 0.2)
        except InterruptedError:
            continue
        if not readable:
            continue
        frame, ancillary, _, address = sock.recvmsg(4096, socket.CMSG_SPACE(16))
        fields = dhcp_fields(frame)
        if fields is None:
            continue
        stamp = time.time_ns()
        for level, kind, data in ancillary:
            if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(data) >= 16:
                seconds, nanoseconds = struct.unpack("qq", data[:16])
                stamp = seconds * 1_000_000_000 + nanoseconds
        fields.update({"t": stamp, "if": address[0], "dir": "out" if address[2] == PACKET_OUTGOING else "in"})
        print(json.dumps(fields), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
