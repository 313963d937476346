#!/usr/bin/env python3
"""An AnyConnect login as a SAML client makes it, for e2e-logins.sh (run in the client namespace):

  login.py HOST PORT USER PASS GROUP [--alpn P1,P2] [--saml BYTES] [--push-wait SECS]
                                     [--think SECS] [--hold] [--connects N]

On one TLS connection (offering ALPN protocols when asked, as AnyConnect does): the aggregate-auth
init POST, then the group and username, then the password in an auth-reply whose form body also
carries a SAMLResponse-like base64 field of BYTES bytes (what a SAML login POSTs after the
browser); with --push-wait, that POST asks the lab's ASA shim (X-Lab-Push-Wait) to hold its answer
SECS seconds, as a headend waiting on an MFA push approval does; with --think, the client waits
SECS seconds before it (a user in the browser or typing: the connection is in the client's hands). Then, on a new connection as openconnect does, CONNECT with the session cookie. Exits 0
and prints one line when the headend answered the CONNECT with 200 CONNECTED; with --hold, prints it
and keeps the tunnel open (answering the headend's DPD) until the connection ends or a signal. With
--connects N, N tunnels one after the other with that cookie (each closed without a BYE before the
next, as a client that lost its connection reconnects), held: the last.
"""
import argparse
import base64
import os
import re
import socket
import ssl
import sys
import time

VERSION = b'<version who="vpn">v9.01</version><device-id>linux-64</device-id>'


def tls(host, port, alpn):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    # The proxy's certificate is e2e-proxy's subject; here the exchange is.
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if alpn:
        ctx.set_alpn_protocols(alpn)
    fam = socket.AF_INET6 if ':' in host else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.settimeout(600)
    s.connect((host, port))
    return ctx.wrap_socket(s, server_hostname=None)


def request(host, path, body, cookies, extra=()):
    head = [b'POST ' + path + b' HTTP/1.1', b'Host: ' + host.encode(),
            b'User-Agent: Open AnyConnect VPN Agent v9.01',
            b'X-Transcend-Version: 1', b'X-Aggregate-Auth: 1', b'X-Support-HTTP-Auth: true']
    head += list(extra)
    if cookies:
        head.append(b'Cookie: ' + b'; '.join(k + b'=' + v for k, v in cookies.items()))
    if body is not None:
        head += [b'Content-Type: application/x-www-form-urlencoded',
                 b'Content-Length: ' + str(len(body)).encode()]
    return b'\r\n'.join(head) + b'\r\n\r\n' + (body or b'')


class Reader:
    def __init__(self, s):
        self.s, self.buf = s, b''

    def more(self):
        data = self.s.recv(65536)
        if not data:
            raise EOFError('the connection closed mid-answer')
        self.buf += data

    def response(self):
        """(status line, head, body) of one answer with Content-Length."""
        while b'\r\n\r\n' not in self.buf:
            self.more()
        head, self.buf = self.buf.split(b'\r\n\r\n', 1)
        m = re.search(rb'(?im)^content-length:\s*(\d+)', head)
        n = int(m.group(1)) if m else 0
        while len(self.buf) < n:
            self.more()
        body, self.buf = self.buf[:n], self.buf[n:]
        return head.split(b'\r\n', 1)[0], head, body


def set_cookies(head, cookies):
    for m in re.finditer(rb'(?im)^set-cookie:\s*([^=;\s]+)=([^;\r\n]*)', head):
        cookies[m.group(1)] = m.group(2)


def auth_reply(fields, group, extra=b''):
    return (b'<?xml version="1.0" encoding="UTF-8"?>\n<config-auth client="vpn" type="auth-reply" '
            b'aggregate-auth-version="2">' + VERSION + b'<group-select>' + group + b'</group-select>'
            b'<auth>' + fields + extra + b'</auth></config-auth>')


def main():
    ap = argparse.ArgumentParser()
    for a in ('host', 'port', 'user', 'password', 'group'):
        ap.add_argument(a)
    ap.add_argument('--alpn', default='')
    ap.add_argument('--saml', type=int, default=0, metavar='BYTES')
    ap.add_argument('--push-wait', type=int, default=0, metavar='SECS')
    ap.add_argument('--think', type=float, default=0, metavar='SECS')
    ap.add_argument('--hold', action='store_true')
    ap.add_argument('--connects', type=int, default=1)
    a = ap.parse_args()
    port, group = int(a.port), a.group.encode()
    alpn = [p for p in a.alpn.split(',') if p]
    t0 = time.monotonic()
    s = tls(a.host, port, alpn)
    r, cookies, sent = Reader(s), {}, 0
    init = (b'<?xml version="1.0" encoding="UTF-8"?>\n<config-auth client="vpn" type="init" '
            b'aggregate-auth-version="2">' + VERSION + b'<group-access>https://' + a.host.encode() +
            b'/</group-access></config-auth>')
    saml = b''
    if a.saml:
        # Base64 of random bytes, as a signed and encrypted SAMLResponse is.
        saml = b'<sso-token>' + base64.b64encode(os.urandom(a.saml * 3 // 4))[:a.saml] + b'</sso-token>'
    steps = [init, auth_reply(b'<username>' + a.user.encode() + b'</username>', group),
             auth_reply(b'<password>' + a.password.encode() + b'</password>', group, saml)]
    waits = []
    for i, body in enumerate(steps):
        extra = [b'X-Lab-Push-Wait: %d' % a.push_wait] if a.push_wait and i == len(steps) - 1 else []
        req = request(a.host, b'/', body, cookies, extra)
        if i == len(steps) - 1:
            time.sleep(a.think)
        t = time.monotonic()
        s.sendall(req)
        sent = max(sent, len(req))
        status, head, answer = r.response()
        waits.append(time.monotonic() - t)
        set_cookies(head, cookies)
        if b' 200 ' not in status + b' ':
            print('login: %s to a POST of %d bytes' % (status.decode(), len(req)))
            return 1
        if b'type="complete"' in answer:
            break
    if b'webvpn' not in cookies:
        print('login: no session cookie after %d POSTs; last answer %r' % (len(steps), answer[:300]))
        return 1
    negotiated = s.selected_alpn_protocol()
    s.close()
    for i in range(a.connects):
        if i:
            c.close()
        c = tls(a.host, port, alpn)
        c.sendall(b'CONNECT /CSCOSSLC/tunnel HTTP/1.1\r\nHost: ' + a.host.encode() + b'\r\n'
                  b'User-Agent: Open AnyConnect VPN Agent v9.01\r\nCookie: webvpn=' +
                  cookies[b'webvpn'] + b'\r\nX-CSTP-Version: 1\r\nX-CSTP-Hostname: saml-client\r\n'
                  b'X-CSTP-MTU: 1400\r\nX-CSTP-Address-Type: IPv6,IPv4\r\nX-CSTP-Base-MTU: 1500\r\n\r\n')
        cr = Reader(c)
        while b'\r\n\r\n' not in cr.buf:
            cr.more()
        status = cr.buf.split(b'\r\n', 1)[0]
        if not status.startswith(b'HTTP/1.1 200'):
            break
    addr = re.search(rb'(?im)^x-cstp-address:\s*(\S+)', cr.buf)
    took = time.monotonic() - t0
    if not status.startswith(b'HTTP/1.1 200'):
        c.close()
        print('login: CONNECT answered %s' % status.decode())
        return 1
    print('login ok: largest POST %d bytes, ALPN offered %s, selected %s, longest answer wait '
          '%.1f s, CONNECT %s, address %s, %.1f s, local port %d' %
          (sent, ','.join(alpn) or 'none', negotiated, max(waits), status.decode(),
           addr.group(1).decode() if addr else '?', took, c.getsockname()[1]), flush=True)
    if a.hold:
        hold(c, cr.buf.split(b'\r\n\r\n', 1)[1])
    c.close()
    return 0


def hold(c, buf):
    """CSTP records until the tunnel ends: a DPD request (type 3) gets its response (type 4)."""
    c.settimeout(None)
    while True:
        while len(buf) >= 8:
            n = 8 + (buf[4] << 8 | buf[5])
            if len(buf) < n:
                break
            if buf[6] == 3:
                c.sendall(b'STF\x01\x00\x00\x04\x00')
            buf = buf[n:]
        try:
            data = c.recv(65536)
        except OSError:
            return
        if not data:
            return
        buf += data


if __name__ == '__main__':
    sys.exit(main())
