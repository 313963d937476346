#!/usr/bin/env python3
"""ASA shim: a TLS relay in the headend namespace, in front of ocserv.

Why: the reconnect mtugate prevents needs a headend that announces a DTLS MTU larger than the
TLS MTU (ASA 9.x: X-DTLS-MTU 1418, X-CSTP-MTU about 1380). ocserv always announces equal
values (lab-notes), so this shim makes them ASA-like, in the headend, where an ASA would:
  - the CONNECT response gets X-CSTP-MTU / X-DTLS-MTU set to the ASA values; every other byte
    passes unchanged, both ways;
  - with --post-auth-xml SIZE, the CONNECT response also carries an X-CSTP-Post-Auth-XML line
    of SIZE bytes, one XML document on one line, as an ASA sends its post-auth profile;
  - with --dump DIR, each CONNECT answer head it sends is kept as DIR/N (N = 1, 2, ...), byte
    for byte, so a test can compare what the client received;
  - after CONNECT, a CSTP DATA frame toward the client larger than the TLS MTU is dropped, as
    an ASA drops what does not fit its TLS tunnel (ASP drop mp-svc-no-fragment). The ICMP it
    would send is left out: the lab shows the black hole of the note's step 7.
  - a POST carrying X-Lab-Push-Wait: SECONDS has its answer held that long, as a headend waiting
    on a push approval (MFA) holds the POST with the password: a lab hook, e2e-logins.sh.
DTLS does not pass here: it goes straight to ocserv's UDP port, mapped by X-DTLS-Session-ID.
ocserv gets the client's real address through a PROXY protocol v1 line.
"""
import argparse
import asyncio
import os
import re
import socket
import ssl
import struct
import sys

CSTP_DATA = 0x00


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def post_auth_xml(size):
    """An ASA-like post-auth XML document of size bytes, on one line."""
    doc = (b'<?xml version="1.0" encoding="UTF-8"?><config-auth client="vpn" type="complete">'
           b'<vpn-profile-manifest><vpn rev="1.0"><file type="profile" service-type="user">'
           b'<uri>/CACHE/stc/profiles/lab.xml</uri><hash type="sha1">%s</hash></file>'
           b'</vpn></vpn-profile-manifest><opaque>' % (b"0" * 40))
    tail = b"</opaque></config-auth>"
    return doc + b"x" * max(0, size - len(doc) - len(tail)) + tail


def rewrite_connect(head, cstp_mtu, dtls_mtu, xml_size=0):
    """Return the CONNECT response header block with ASA-like MTUs."""
    out = []
    for line in head.split(b"\r\n"):
        if re.match(rb"(?i)x-cstp-mtu:", line):
            line = b"X-CSTP-MTU: %d" % cstp_mtu
        elif re.match(rb"(?i)x-dtls-mtu:", line):
            line = b"X-DTLS-MTU: %d" % dtls_mtu
        out.append(line)
    if xml_size:
        out.append(b"X-CSTP-Post-Auth-XML: " + post_auth_xml(xml_size))
    return b"\r\n".join(out)


def dump_head(folder, head):
    """Keep a CONNECT answer head as the next numbered file of folder."""
    if not folder:
        return
    os.makedirs(folder, exist_ok=True)
    n = len(os.listdir(folder)) + 1
    with open(os.path.join(folder, "%d" % n), "wb") as f:
        f.write(head)


class Session:
    def __init__(self, args, peer, local):
        self.args = args
        self.peer = peer
        self.local = local
        self.connect_sent = False
        self.dropped = 0
        self.hold_until = 0.0

    async def client_to_server(self, reader, writer):
        buf = b""
        while True:
            data = await reader.read(65536)
            if not data:
                break
            if self.connect_sent:
                # ocserv wants each CSTP frame in a TLS record of its own.
                buf += data
                while len(buf) >= 8 and buf[:4] == b"STF\x01":
                    end = 8 + struct.unpack("!H", buf[4:6])[0]
                    if len(buf) < end:
                        break
                    writer.write(buf[:end])
                    buf = buf[end:]
                await writer.drain()
                continue
            if data.startswith(b"CONNECT "):
                self.connect_sent = True
            m = re.search(rb"(?im)^x-lab-push-wait:\s*(\d+)", data) if data.startswith(b"POST ") else None
            if m:
                self.hold_until = asyncio.get_running_loop().time() + int(m.group(1))
                log("%s: holding the answer to a POST %s s (push approval)" % (self.peer[0], m.group(1).decode()))
            writer.write(data)
            await writer.drain()
        writer.close()

    async def server_to_client(self, reader, writer):
        buf = b""
        while True:
            data = await reader.read(65536)
            if not data:
                break
            if not self.connect_sent:
                if self.hold_until:
                    await asyncio.sleep(max(0.0, self.hold_until - asyncio.get_running_loop().time()))
                    self.hold_until = 0.0
                writer.write(data)
                await writer.drain()
                continue
            buf += data
            if not buf.startswith(b"HTTP/"):
                break
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                continue
            head, buf = buf[:end], buf[end + 4:]
            if b" 200 " in head.split(b"\r\n", 1)[0]:
                head = rewrite_connect(head, self.args.cstp_mtu, self.args.dtls_mtu,
                                       self.args.post_auth_xml)
                log("%s: CONNECT rewritten: X-CSTP-MTU %d X-DTLS-MTU %d, %d header lines, %d bytes" %
                    (self.peer[0], self.args.cstp_mtu, self.args.dtls_mtu,
                     head.count(b"\r\n"), len(head) + 4))
                dump_head(self.args.dump, head + b"\r\n\r\n")
                writer.write(head + b"\r\n\r\n")
                await writer.drain()
                await self.cstp_frames(reader, writer, buf)
                return
            writer.write(head + b"\r\n\r\n" + buf)
            await writer.drain()
            self.connect_sent = False
            buf = b""
        writer.close()

    async def cstp_frames(self, reader, writer, buf):
        while True:
            while len(buf) >= 8:
                if buf[:4] != b"STF\x01":
                    log("%s: not a CSTP frame, passing the rest raw" % self.peer[0])
                    writer.write(buf)
                    buf = b""
                    break
                (plen,) = struct.unpack("!H", buf[4:6])
                if len(buf) < 8 + plen:
                    break
                frame, buf = buf[:8 + plen], buf[8 + plen:]
                if frame[6] == CSTP_DATA and plen > self.args.cstp_mtu and self.args.enforce:
                    self.dropped += 1
                    if self.dropped <= 3 or self.dropped % 100 == 0:
                            log("%s: dropped %d-byte packet over TLS MTU %d (mp-svc-no-fragment), %d so far"
                            % (self.peer[0], plen, self.args.cstp_mtu, self.dropped))
                    continue
                writer.write(frame)
            await writer.drain()
            data = await reader.read(65536)
            if not data:
                break
            buf += data
        writer.close()


async def handle(args, ctx_up, creader, cwriter):
    peer = cwriter.get_extra_info("peername")
    local = cwriter.get_extra_info("sockname")
    host, port = args.upstream.rsplit(":", 1)
    fam = "TCP6" if ":" in peer[0] else "TCP4"
    proxy_line = "PROXY %s %s %s %d %d\r\n" % (fam, peer[0], local[0], peer[1], local[1])
    try:
        sock = socket.create_connection((host.strip("[]"), int(port)), timeout=5)
        sock.sendall(proxy_line.encode())
        sock.setblocking(False)
        sreader, swriter = await asyncio.open_connection(sock=sock, ssl=ctx_up, server_hostname="")
    except OSError as e:
        log("upstream: %s" % e)
        cwriter.close()
        return
    s = Session(args, peer, local)
    tasks = [asyncio.ensure_future(s.client_to_server(creader, swriter)),
             asyncio.ensure_future(s.server_to_client(sreader, cwriter))]
    done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    for t in pending:
        t.cancel()
    for w in (cwriter, swriter):
        w.close()


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--listen", action="append", required=True)
    ap.add_argument("--port", type=int, default=443)
    ap.add_argument("--upstream", required=True)
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--cstp-mtu", type=int, default=1380)
    ap.add_argument("--dtls-mtu", type=int, default=1418)
    ap.add_argument("--no-enforce", dest="enforce", action="store_false")
    ap.add_argument("--post-auth-xml", type=int, default=0, metavar="SIZE")
    ap.add_argument("--dump", metavar="DIR")
    args = ap.parse_args()
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(args.cert, args.key)
    # ocserv's certificate is the lab's own; the shim stands in the headend next to it.
    ctx_up = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx_up.check_hostname = False
    ctx_up.verify_mode = ssl.CERT_NONE
    servers = []
    for host in args.listen:
        servers.append(await asyncio.start_server(
            lambda r, w: handle(args, ctx_up, r, w), host, args.port, ssl=ctx))
    log("asa-shim: listening on %s port %d, upstream %s, X-CSTP-MTU %d X-DTLS-MTU %d"
        % (",".join(args.listen), args.port, args.upstream, args.cstp_mtu, args.dtls_mtu))
    await asyncio.gather(*(s.serve_forever() for s in servers))


if __name__ == "__main__":
    asyncio.run(main())
