/*
 * The saved-SYN helper: recovers the source address of a TCP connection that was reset before
 * the agent accepted it.
 *
 * `nmap -sT` (and most connect scanners) completes the handshake and resets at once. The kernel
 * still queues the connection, but by the time Node accepts it the socket is closed and
 * getpeername(2) fails with ENOTCONN, so the source is lost (libuv's accept(2) does not ask for
 * the peer's address). With TCP_SAVE_SYN on the listener (Linux 4.2+), the kernel keeps each
 * connection's SYN headers; TCP_SAVED_SYN reads them back — reset or not — and the IP header
 * holds the source. No privilege is needed.
 *
 * It also answers three questions Node has no API for:
 * - originalPort(fd): a redirected connection's original destination port (SO_ORIGINAL_DST, kept
 *   by conntrack for a nat `redirect`): the redirect sends unused ports to one socket, and the
 *   port the client asked for is what the event should name;
 * - peer(fd): the kernel's credentials of the process at the other end of a Unix socket
 *   (SO_PEERCRED), who is asking on the agent's control socket;
 * - lock(fd, exclusive, wait) / unlock(fd): flock(2) on a file, the store's one-writer lock,
 *   which the kernel releases when its holder dies (kill -9 included).
 *
 * Built by scripts/build-native.sh at `npm ci`; optional for the listeners, required for the
 * control socket's caller identity and the store lock (without it both say so).
 */
#define _GNU_SOURCE
#include <node_api.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/file.h>
#include <errno.h>
#include <string.h>

#ifndef SO_ORIGINAL_DST
#define SO_ORIGINAL_DST 80
#endif
#ifndef IP6T_SO_ORIGINAL_DST
#define IP6T_SO_ORIGINAL_DST 80
#endif
#ifndef TCP_SAVE_SYN
#define TCP_SAVE_SYN 27
#endif
#ifndef TCP_SAVED_SYN
#define TCP_SAVED_SYN 28
#endif

static int fd_argument(napi_env env, napi_callback_info info, int *fd) {
  size_t argc = 1;
  napi_value argv[1];
  int32_t value;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1) return -1;
  if (napi_get_value_int32(env, argv[0], &value) != napi_ok || value < 0) return -1;
  *fd = value;
  return 0;
}

/* enable(listenerFd) -> boolean: keep the SYN of every connection this listener accepts */
static napi_value enable(napi_env env, napi_callback_info info) {
  int fd, one = 1, ok;
  napi_value result;
  ok = fd_argument(env, info, &fd) == 0 && setsockopt(fd, IPPROTO_TCP, TCP_SAVE_SYN, &one, sizeof one) == 0;
  napi_get_boolean(env, ok, &result);
  return result;
}

/* source(connectionFd) -> string | undefined: the source address of the connection's SYN */
static napi_value source(napi_env env, napi_callback_info info) {
  int fd, version;
  unsigned char headers[512];
  socklen_t length = sizeof headers;
  char text[INET6_ADDRSTRLEN];
  napi_value result;
  napi_get_undefined(env, &result);
  if (fd_argument(env, info, &fd) != 0) return result;
  if (getsockopt(fd, IPPROTO_TCP, TCP_SAVED_SYN, headers, &length) != 0 || length < 20) return result;
  version = headers[0] >> 4;
  if (version == 4) {
    if (!inet_ntop(AF_INET, headers + 12, text, sizeof text)) return result;
  } else if (version == 6 && length >= 40) {
    if (!inet_ntop(AF_INET6, headers + 8, text, sizeof text)) return result;
  } else {
    return result;
  }
  napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &result);
  return result;
}

/*
 * originalPort(connectionFd) -> number | undefined: the destination port the client's SYN had
 * before a nat redirect (conntrack's original tuple). IPv4 (also an IPv4-mapped peer of a
 * dual-stack socket) through SOL_IP, IPv6 through SOL_IPV6; undefined when not redirected or
 * when conntrack no longer has the connection.
 */
static napi_value original_port(napi_env env, napi_callback_info info) {
  int fd;
  struct sockaddr_in v4;
  struct sockaddr_in6 v6;
  socklen_t length;
  napi_value result;
  napi_get_undefined(env, &result);
  if (fd_argument(env, info, &fd) != 0) return result;
  length = sizeof v4;
  if (getsockopt(fd, SOL_IP, SO_ORIGINAL_DST, &v4, &length) == 0 && length >= sizeof v4 && v4.sin_family == AF_INET) {
    napi_create_uint32(env, ntohs(v4.sin_port), &result);
    return result;
  }
  length = sizeof v6;
  if (getsockopt(fd, SOL_IPV6, IP6T_SO_ORIGINAL_DST, &v6, &length) == 0 && length >= sizeof v6 && v6.sin6_family == AF_INET6) {
    napi_create_uint32(env, ntohs(v6.sin6_port), &result);
  }
  return result;
}

/* peer(unixConnectionFd) -> {pid, uid, gid} | undefined */
static napi_value peer(napi_env env, napi_callback_info info) {
  int fd;
  struct ucred cred;
  socklen_t length = sizeof cred;
  napi_value result, value;
  napi_get_undefined(env, &result);
  if (fd_argument(env, info, &fd) != 0) return result;
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &length) != 0 || length != sizeof cred) return result;
  napi_create_object(env, &result);
  napi_create_int64(env, cred.pid, &value);
  napi_set_named_property(env, result, "pid", value);
  napi_create_int64(env, cred.uid, &value);
  napi_set_named_property(env, result, "uid", value);
  napi_create_int64(env, cred.gid, &value);
  napi_set_named_property(env, result, "gid", value);
  return result;
}

/* lock(fd, exclusive, wait) -> 0 | errno (EWOULDBLOCK when not waiting and held elsewhere) */
static napi_value lock(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3], result;
  int32_t fd;
  bool exclusive = true, wait = false;
  int rc;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1 || napi_get_value_int32(env, argv[0], &fd) != napi_ok || fd < 0) {
    napi_create_int32(env, EBADF, &result);
    return result;
  }
  if (argc > 1) napi_get_value_bool(env, argv[1], &exclusive);
  if (argc > 2) napi_get_value_bool(env, argv[2], &wait);
  do {
    rc = flock(fd, (exclusive ? LOCK_EX : LOCK_SH) | (wait ? 0 : LOCK_NB));
  } while (rc != 0 && errno == EINTR);
  napi_create_int32(env, rc == 0 ? 0 : errno, &result);
  return result;
}

/* unlock(fd) -> 0 | errno */
static napi_value unlock(napi_env env, napi_callback_info info) {
  int fd;
  napi_value result;
  int rc = fd_argument(env, info, &fd) == 0 ? flock(fd, LOCK_UN) : -1;
  napi_create_int32(env, rc == 0 ? 0 : (errno ? errno : EBADF), &result);
  return result;
}

NAPI_MODULE_INIT() {
  napi_property_descriptor properties[] = {
    {"enable", NULL, enable, NULL, NULL, NULL, napi_default, NULL},
    {"source", NULL, source, NULL, NULL, NULL, napi_default, NULL},
    {"originalPort", NULL, original_port, NULL, NULL, NULL, napi_default, NULL},
    {"peer", NULL, peer, NULL, NULL, NULL, napi_default, NULL},
    {"lock", NULL, lock, NULL, NULL, NULL, napi_default, NULL},
    {"unlock", NULL, unlock, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof properties / sizeof properties[0], properties);
  return exports;
}
