/* Transparent sockets for the proxy: the TPROXY listener, and the upstream
 * connection that leaves with the client's own address. */
#ifndef MTUGATE_PROXY_LISTEN_H
#define MTUGATE_PROXY_LISTEN_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

/* A non-blocking IP_TRANSPARENT listener on 127.0.0.1:port or [::1]:port
 * (v6 only), where the printed TPROXY rules send (--on-ip, conf/rules.h
 * RULES_PROXY_ON4/6), with SO_REUSEPORT (one per proxy worker): the fd, or
 * -errno. */
int listen_open(int family, uint16_t port);

/* Accept one connection (non-blocking, close-on-exec). Under TPROXY the
 * accepted socket's local address is the original destination (the
 * headend). The fd, or -errno (-EAGAIN: none pending). */
int listen_accept(int lfd, struct sockaddr_storage *client, struct sockaddr_storage *dst);

/* Whether addr (its port aside) is one of this host's own addresses, loopback
 * included: a connection from there is a loop through the proxy, or a local
 * user, never a diverted client. */
bool listen_is_local(const struct sockaddr_storage *addr);

/* A non-blocking TCP socket of family with IP_TRANSPARENT set (which needs
 * CAP_NET_ADMIN or CAP_NET_RAW): the fd, or -errno. */
int listen_transparent_socket(int family);

/* Where upstream sockets come from when the process has no capability: fn
 * returns what listen_transparent_socket() would, made by a process that
 * has one (the packet process, over a socketpair). */
struct listen_supply {
	int (*socket)(void *arg, int family);
	void *arg;
};

/* Start a non-blocking connect to dst from the client's address (any port),
 * so the headend sees the real client; its socket from sup (NULL: made
 * here). The fd, or -errno. */
int listen_upstream(const struct listen_supply *sup, const struct sockaddr_storage *client,
		    const struct sockaddr_storage *dst);

/* The result of the connect once the fd is writable: 0 or -errno. */
int listen_connected(int fd);

/* TCP keepalive on fd: probes after idle seconds of silence, every 30 s, 4
 * unanswered and the kernel resets the connection. For a tunnel whose headend
 * sets no DPD: the only sign of a peer gone without a word. 0 or -errno. */
int listen_keepalive(int fd, unsigned idle);

#endif
