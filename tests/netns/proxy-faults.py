#!/usr/bin/env python3
"""Hostile clients for mtugated's TLS proxy (e2e-proxy-faults.sh runs them in the client
namespace). Each mode prints one summary line and exits 0 when the proxy behaved:

  firstflight HOST PORT   a TCP connection per byte offset of the client's first TLS flight
                          (the ClientHello): send that many bytes, close; every other offset
                          closes with a reset (SO_LINGER 0) instead of a FIN
  http HOST PORT          a full TLS handshake, then close at every byte offset of an
                          openconnect-style first POST; then read each offset of the answer
                          (concurrently: past its end, each waits for the proxy's idle close)
  stall HOST PORT SECS    clients that stop mid-ClientHello or after the handshake: the proxy
                          must close each one within SECS
  bigheaders HOST PORT    4 MB of request headers, then a 4 MB header line:
                          the proxy must close the connection long before it has read it all
http and bigheaders first wait (60 s at most) for a request answered whole.
Attackers (e2e-hostile.sh); SRC is the source address they bind:
  flood HOST PORT SRC N SECS RATE   N idle TCP connections held for SECS seconds, each one
                          the proxy closes opened again at once (at most RATE opens a second)
  trickle HOST PORT SRC N LIMIT     N logins that finish TLS, then send a request head one byte
                          a second: exits 0 when the proxy closed every one within LIMIT s
  hold HOST PORT SRC N    N logins that finish TLS and send 8 KB of an unfinished request
                          head, held until killed ("held N" once all are up)
"""
import concurrent.futures
import errno
import re
import selectors
import signal
import socket
import ssl
import struct
import sys
import time

XML = (b'<?xml version="1.0" encoding="UTF-8"?>\n'
       b'<config-auth client="vpn" type="init" aggregate-auth-version="2">'
       b'<version who="vpn">v9.01</version><device-id>linux-64</device-id>'
       b'<group-access>https://HOST/</group-access></config-auth>')


def post(host):
    body = XML.replace(b'HOST', host.encode())
    return (b'POST / HTTP/1.1\r\nHost: ' + host.encode() + b'\r\n'
            b'User-Agent: Open AnyConnect VPN Agent v9.01\r\n'
            b'Content-Type: application/x-www-form-urlencoded\r\n'
            b'X-Transcend-Version: 1\r\nX-Aggregate-Auth: 1\r\nX-Support-HTTP-Auth: true\r\n'
            b'Content-Length: ' + str(len(body)).encode() + b'\r\n\r\n' + body)


def client_ctx():
    # The proxy's certificate is not what is tested here.
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def first_flight(host):
    """The ClientHello bytes Python's TLS would send, taken from a memory BIO."""
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = client_ctx().wrap_bio(inc, out, server_hostname=None)
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return out.read()


def connect(host, port, timeout=10, sndbuf=0, src=None):
    fam = socket.AF_INET6 if ':' in host else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    if src:
        s.bind((src, 0))
    if sndbuf:
        # A small fixed buffer: what send() took is then close to what the peer read.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, sndbuf)
    s.settimeout(timeout)
    s.connect((host, port))
    return s


def close(s, reset):
    if reset:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0))
    s.close()


def tls(host, port, sndbuf=0, src=None):
    return client_ctx().wrap_socket(connect(host, port, sndbuf=sndbuf, src=src),
                                    server_hostname=None)


def mode_firstflight(host, port):
    hello = first_flight(host)
    for k in range(len(hello) + 1):
        s = connect(host, port)
        if k:
            s.sendall(hello[:k])
        close(s, reset=k % 2 == 1)
    print(f'firstflight: {len(hello) + 1} connections, ClientHello of {len(hello)} bytes')
    return 0


def mode_http(host, port):
    req = post(host)
    n = 0
    for k in range(len(req) + 1):
        s = tls(host, port)
        if k:
            s.sendall(req[:k])
        # Without close_notify: the TCP connection just ends, every other one with a reset.
        close(s, reset=k % 2 == 1)
        n += 1
    tries = headend_ready(host, port)
    n += abs(tries)
    if tries < 0:
        print('http: the headend answered no whole POST through the proxy in 60 s')
        return 1
    # The whole request, then the answer cut at a spread of offsets. Past the answer's end
    # a reader waits for the proxy's idle close: all offsets at once, so that wait is paid once.
    def answer_cut(k):
        s = tls(host, port)
        s.sendall(req)
        data = b''
        try:
            while len(data) < k:
                chunk = s.recv(k - len(data))
                if not chunk:
                    break
                data += chunk
        except (socket.timeout, OSError):
            pass
        close(s, reset=k % 2 == 1)
        return len(data)
    offsets = range(0, 2048, 97)
    with concurrent.futures.ThreadPoolExecutor(len(offsets)) as pool:
        got = max(pool.map(answer_cut, offsets))
    n += len(offsets)
    if got == 0:
        print('http: the headend never answered the POST through the proxy')
        return 1
    print(f'http: {n} connections, request of {len(req)} bytes, up to {got} answer bytes read')
    return 0


def answered(host, port, req):
    """True when the request gets the headend's whole answer (head and Content-Length body)."""
    try:
        s = tls(host, port)
    except (socket.timeout, ConnectionError, ssl.SSLError, OSError):
        return False
    data = b''
    try:
        s.sendall(req)
        while True:
            head, sep, body = data.partition(b'\r\n\r\n')
            if sep:
                m = re.search(rb'(?im)^content-length:\s*(\d+)', head)
                if len(body) >= int(m[1] if m else 0):
                    return head.startswith(b'HTTP/1.1 200')
            chunk = s.recv(65536)
            if not chunk:
                return False
            data += chunk
    except (socket.timeout, ConnectionError, ssl.SSLError, OSError):
        return False
    finally:
        s.close()


def headend_ready(host, port, secs=60):
    """Requests until one is answered whole: the connections it took, negative past SECS.
    A headend slowed down by a burst of connections (ocserv forks a worker for each) can
    leave the next ones to the proxy's handshake_timeout, and they would test nothing."""
    req = post(host)
    deadline = time.monotonic() + secs
    tries = 1
    while not answered(host, port, req):
        if time.monotonic() > deadline:
            return -tries
        time.sleep(0.2)
        tries += 1
    return tries


def wait_closed(s, deadline):
    """True when the peer closes (EOF or reset) before the deadline."""
    while time.monotonic() < deadline:
        s.settimeout(max(0.05, deadline - time.monotonic()))
        try:
            if not s.recv(65536):
                return True
        except socket.timeout:
            return False
        except (ConnectionError, ssl.SSLError, OSError):
            return True
    return False


def mode_stall(host, port, secs):
    hello = first_flight(host)
    socks = []
    for k in (0, 1, 5, len(hello) // 2, len(hello) - 1):
        s = connect(host, port)
        if k:
            s.sendall(hello[:k])
        socks.append((f'after {k} ClientHello bytes', s))
    socks.append(('after the TLS handshake', tls(host, port)))
    t = tls(host, port)
    t.sendall(post(host)[:40])
    socks.append(('mid-request', t))
    start = time.monotonic()
    bad = 0
    for what, s in socks:
        if wait_closed(s, start + secs):
            print(f'stall {what}: closed by the proxy after {time.monotonic() - start:.1f} s')
        else:
            print(f'stall {what}: still open after {secs} s')
            bad += 1
        s.close()
    print(f'stall: {len(socks)} connections, {bad} left open')
    return 1 if bad else 0


def push(s, data):
    """Send until the proxy stops reading or closes; the bytes it took."""
    sent = 0
    s.settimeout(5)
    try:
        while sent < len(data):
            sent += s.send(data[sent:sent + 16384])
    except (socket.timeout, ConnectionError, ssl.SSLError, OSError):
        pass
    return sent


def mode_bigheaders(host, port):
    # Four megabytes of headers: twice the proxy's own head limit (2 MiB), so the close
    # does not hang on when the headend gives up on the head it is streamed.
    mib = 1 << 20
    short = b'X-Filler: ' + b'a' * 50 + b'\r\n'
    long = b'X-Filler: ' + b'a' * 8000 + b'\r\n'
    cases = [
        ('four megabytes of short headers', short * (4 * mib // len(short))),
        ('four megabytes of 8 KB headers', long * (4 * mib // len(long))),
        # Four megabytes too: what a loaded proxy's socket buffers take before its
        # close (a megabyte was once taken whole) must not pass for reading it all.
        ('a four-megabyte header line', b'X-Filler: ' + b'a' * (4 * mib)),
    ]
    tries = headend_ready(host, port)
    if tries < 0:
        print(f'bigheaders: {-tries} connections, the headend answered no whole POST in 60 s')
        return 1
    bad = 0
    for what, headers in cases:
        data = b'POST / HTTP/1.1\r\nHost: ' + host.encode() + b'\r\n' + headers
        s = tls(host, port, sndbuf=16384)
        sent = push(s, data)
        closed = wait_closed(s, time.monotonic() + 10)
        s.close()
        print(f'bigheaders {what}: {sent} of {len(data)} bytes taken, '
              f'{"closed" if closed else "NOT closed"}')
        if not closed or sent >= len(data):
            bad += 1
    print(f'bigheaders: {len(cases) + tries} connections, {bad} not closed in time')
    return 1 if bad else 0


def flood_open(sel, host, port, src):
    fam = socket.AF_INET6 if ':' in host else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.setblocking(False)
    s.bind((src, 0))
    err = s.connect_ex((host, port))
    if err not in (0, errno.EINPROGRESS):
        s.close()
        return False
    sel.register(s, selectors.EVENT_READ)
    return True


def mode_flood(host, port, src, n, secs, rate):
    """Idle connections that never send a byte: the proxy's close (EOF, reset) or a failed
    connect makes the socket readable, and it is opened again."""
    sel = selectors.DefaultSelector()
    opened = closed = failed = 0
    start = time.monotonic()
    end = start + secs
    stop = []
    # Stopped early (SIGTERM): the summary still comes.
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    while time.monotonic() < end and not stop:
        # Opens are paced: at most RATE a second since the start.
        allowed = int((time.monotonic() - start) * rate) + 1 - opened - failed
        for _ in range(max(0, min(allowed, n - len(sel.get_map())))):
            if flood_open(sel, host, port, src):
                opened += 1
            else:
                failed += 1
        for key, _ in sel.select(timeout=0.01):
            s = key.fileobj
            try:
                gone = not s.recv(1)
            except BlockingIOError:
                continue
            except OSError:
                gone = True
            if gone:
                sel.unregister(s)
                s.close()
                closed += 1
    held = len(sel.get_map())
    for key in list(sel.get_map().values()):
        key.fileobj.close()
    print(f'flood from {src}: {opened} connections opened in {time.monotonic() - start:.0f} s, '
          f'{closed} closed by the proxy, {held} open at the end, {failed} connects failed',
          flush=True)
    return 0


def mode_trickle(host, port, src, n, limit):
    head = post(host)
    socks = []
    for _ in range(n):
        s = tls(host, port, src=src)
        s.setblocking(False)
        socks.append([s, time.monotonic(), 0, None])
    deadline = time.monotonic() + limit + 5
    while time.monotonic() < deadline and any(c[3] is None for c in socks):
        for c in socks:
            if c[3] is not None:
                continue
            try:
                c[0].send(head[c[2] % len(head):c[2] % len(head) + 1])
                c[2] += 1
                if c[0].recv(1) == b'':
                    c[3] = time.monotonic() - c[1]
            except (ssl.SSLWantReadError, BlockingIOError):
                pass
            except (ConnectionError, ssl.SSLError, OSError):
                c[3] = time.monotonic() - c[1]
        time.sleep(1)
    lived = [c[3] for c in socks if c[3] is not None]
    still = sum(1 for c in socks if c[3] is None)
    longest = max(lived) if lived else 0
    print(f'trickle from {src}: {n} connections, {sum(c[2] for c in socks)} bytes sent one a '
          f'second, closed after at most {longest:.1f} s, {still} still open after {limit + 5} s')
    return 0 if not still and longest <= limit else 1


def mode_hold(host, port, src, n):
    head = post(host).split(b'\r\n\r\n')[0] + b'\r\n' + b'X-Filler: ' + b'a' * 8000 + b'\r\n'
    socks = []
    for _ in range(n):
        s = tls(host, port, src=src)
        s.sendall(head)
        socks.append(s)
    print(f'held {n}', flush=True)
    while True:
        time.sleep(60)


def main(argv):
    if len(argv) < 4:
        print(__doc__)
        return 2
    mode, host, port = argv[1], argv[2], int(argv[3])
    if mode == 'firstflight':
        return mode_firstflight(host, port)
    if mode == 'http':
        return mode_http(host, port)
    if mode == 'stall':
        return mode_stall(host, port, float(argv[4]))
    if mode == 'bigheaders':
        return mode_bigheaders(host, port)
    if mode == 'flood':
        return mode_flood(host, port, argv[4], int(argv[5]), float(argv[6]), float(argv[7]))
    if mode == 'trickle':
        return mode_trickle(host, port, argv[4], int(argv[5]), float(argv[6]))
    if mode == 'hold':
        return mode_hold(host, port, argv[4], int(argv[5]))
    print(__doc__)
    return 2


if __name__ == '__main__':
    sys.exit(main(sys.argv))
