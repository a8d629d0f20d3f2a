/*
 * fdpass: hands TCP descriptors from the master to its workers in batches.
 *
 * Node's IPC channel carries one handle per message, and child_process waits
 * for the child's NODE_HANDLE_ACK before it sends the next one, so every
 * hand-off costs a message, a JSON round trip and an acknowledgement each way.
 * This addon gives the master and each worker a SOCK_SEQPACKET socket pair of
 * their own: one sendmsg(2) carries up to MAX_FDS descriptors (SCM_RIGHTS)
 * plus one payload, one recvmsg(2) takes them, and message boundaries are the
 * kernel's (no framing of our own). Readiness comes from a uv_poll_t on the
 * caller's event loop. Everything else (what the payload says, acks, retries)
 * is TypeScript: this file only moves bytes and descriptors.
 *
 * Exports:
 *   socketpair()                   -> [fd0, fd1]   SOCK_SEQPACKET, CLOEXEC, fd0 non-blocking
 *   setNonBlocking(fd)             -> 0 | -errno
 *   send(fd, payload, fds, count)  -> bytes sent | -errno (EAGAIN: try again when writable)
 *   recv(fd, buffer, fdsOut)       -> bytes read | 0 (peer closed) | -errno;
 *                                     fdsOut[0] = descriptors received, fdsOut[1..] the descriptors;
 *                                     -EMSGSIZE when the payload was cut short (the descriptors that
 *                                     did arrive are closed); descriptors the kernel could not install
 *                                     (EMFILE) are simply missing from the end of fdsOut
 *   close(fd)                      -> 0 | -errno
 *   Poller(fd, callback(status, events)): start(events), stop(), close()
 *   READABLE, WRITABLE, MAX_FDS
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <node_api.h>
#include <uv.h>

#define MAX_FDS 64

#define CHECK(call)                                      \
  do {                                                   \
    if ((call) != napi_ok) {                             \
      napi_throw_error(env, NULL, "fdpass: " #call);     \
      return NULL;                                       \
    }                                                    \
  } while (0)

static napi_value make_int(napi_env env, int64_t value) {
  napi_value result;
  if (napi_create_int64(env, value, &result) != napi_ok) return NULL;
  return result;
}

static int get_fd(napi_env env, napi_value value, int32_t* fd) {
  return napi_get_value_int32(env, value, fd) == napi_ok && *fd >= 0;
}

static napi_value js_socketpair(napi_env env, napi_callback_info info) {
  int fds[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds) != 0) {
    napi_throw_error(env, NULL, strerror(errno));
    return NULL;
  }
  /* Room for big batches; the kernel caps it at net.core.wmem_max. */
  int size = 1 << 20;
  setsockopt(fds[0], SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
  setsockopt(fds[1], SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
  int flags = fcntl(fds[0], F_GETFL);
  if (flags == -1 || fcntl(fds[0], F_SETFL, flags | O_NONBLOCK) == -1) {
    int err = errno;
    close(fds[0]);
    close(fds[1]);
    napi_throw_error(env, NULL, strerror(err));
    return NULL;
  }
  napi_value result;
  CHECK(napi_create_array_with_length(env, 2, &result));
  CHECK(napi_set_element(env, result, 0, make_int(env, fds[0])));
  CHECK(napi_set_element(env, result, 1, make_int(env, fds[1])));
  return result;
}

/* The one descriptor argument of setNonBlocking(fd) and close(fd). */
static int get_fd_argument(napi_env env, napi_callback_info info, int32_t* fd) {
  size_t argc = 1;
  napi_value argv[1];
  return napi_get_cb_info(env, info, &argc, argv, NULL, NULL) == napi_ok && argc >= 1 && get_fd(env, argv[0], fd);
}

static napi_value js_set_nonblocking(napi_env env, napi_callback_info info) {
  int32_t fd;
  if (!get_fd_argument(env, info, &fd)) return make_int(env, -EBADF);
  int flags = fcntl(fd, F_GETFL);
  if (flags == -1 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) == -1) return make_int(env, -errno);
  return make_int(env, 0);
}

static napi_value js_close(napi_env env, napi_callback_info info) {
  int32_t fd;
  if (!get_fd_argument(env, info, &fd)) return make_int(env, -EBADF);
  return make_int(env, close(fd) == 0 ? 0 : -errno);
}

/* Reads a typed-array argument of the wanted element type (a Buffer is a Uint8Array). */
static int get_typed(napi_env env, napi_value value, napi_typedarray_type wanted, void** data, size_t* length) {
  bool is_typed;
  if (napi_is_typedarray(env, value, &is_typed) != napi_ok || !is_typed) return 0;
  napi_typedarray_type type;
  napi_value arraybuffer;
  size_t offset;
  if (napi_get_typedarray_info(env, value, &type, length, data, &arraybuffer, &offset) != napi_ok) return 0;
  return type == wanted;
}

/* One sendmsg/recvmsg message: a single buffer, and room for MAX_FDS descriptors. */
typedef struct {
  struct msghdr msg;
  struct iovec iov;
  union {
    char buf[CMSG_SPACE(sizeof(int) * MAX_FDS)];
    struct cmsghdr align;
  } control;
} message_t;

/* Points the message at `data`; the control part is set up by the caller. */
static void message_init(message_t* m, void* data, size_t length) {
  memset(m, 0, sizeof *m);
  m->iov.iov_base = data;
  m->iov.iov_len = length;
  m->msg.msg_iov = &m->iov;
  m->msg.msg_iovlen = 1;
}

static napi_value js_send(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  int32_t fd, count;
  void* payload;
  size_t payload_length, fds_length;
  int32_t* fds;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 4 || !get_fd(env, argv[0], &fd)) return make_int(env, -EBADF);
  if (!get_typed(env, argv[1], napi_uint8_array, &payload, &payload_length) ||
      !get_typed(env, argv[2], napi_int32_array, (void**)&fds, &fds_length) || napi_get_value_int32(env, argv[3], &count) != napi_ok || count < 0 || count > MAX_FDS || (size_t)count > fds_length ||
      payload_length == 0) {
    return make_int(env, -EINVAL);
  }
  message_t m;
  message_init(&m, payload, payload_length);
  struct msghdr* msg = &m.msg;
  if (count > 0) {
    msg->msg_control = m.control.buf;
    msg->msg_controllen = CMSG_SPACE(sizeof(int) * count);
    struct cmsghdr* cmsg = CMSG_FIRSTHDR(msg);
    cmsg->cmsg_level = SOL_SOCKET;
    cmsg->cmsg_type = SCM_RIGHTS;
    cmsg->cmsg_len = CMSG_LEN(sizeof(int) * count);
    memcpy(CMSG_DATA(cmsg), fds, sizeof(int) * count);
  }
  ssize_t sent;
  do {
    sent = sendmsg(fd, msg, MSG_NOSIGNAL | MSG_DONTWAIT);
  } while (sent == -1 && errno == EINTR);
  return make_int(env, sent == -1 ? -errno : sent);
}

static napi_value js_recv(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  int32_t fd;
  void* buffer;
  size_t buffer_length, fds_length;
  int32_t* fds_out;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 3 || !get_fd(env, argv[0], &fd)) return make_int(env, -EBADF);
  if (!get_typed(env, argv[1], napi_uint8_array, &buffer, &buffer_length) ||
      !get_typed(env, argv[2], napi_int32_array, (void**)&fds_out, &fds_length) || fds_length < MAX_FDS + 1 || buffer_length == 0) {
    return make_int(env, -EINVAL);
  }
  fds_out[0] = 0;
  message_t m;
  message_init(&m, buffer, buffer_length);
  struct msghdr* msg = &m.msg;
  msg->msg_control = m.control.buf;
  msg->msg_controllen = sizeof m.control.buf;
  ssize_t received;
  do {
    received = recvmsg(fd, msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
  } while (received == -1 && errno == EINTR);
  if (received == -1) return make_int(env, -errno);
  int32_t count = 0;
  for (struct cmsghdr* cmsg = CMSG_FIRSTHDR(msg); cmsg != NULL; cmsg = CMSG_NXTHDR(msg, cmsg)) {
    if (cmsg->cmsg_level != SOL_SOCKET || cmsg->cmsg_type != SCM_RIGHTS) continue;
    size_t n = (cmsg->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    int* data = (int*)CMSG_DATA(cmsg);
    for (size_t i = 0; i < n; i++) {
      if (count < MAX_FDS) {
        memcpy(&fds_out[1 + count], &data[i], sizeof(int));
        count++;
      } else {
        close(data[i]);
      }
    }
  }
  if (msg->msg_flags & MSG_TRUNC) {
    /* The payload was cut short: the message cannot be read, nor matched with its descriptors. */
    for (int32_t i = 0; i < count; i++) close(fds_out[1 + i]);
    fds_out[0] = 0;
    return make_int(env, -EMSGSIZE);
  }
  /*
   * MSG_CTRUNC alone: the kernel could not install every descriptor (this
   * process is at its descriptor limit). It installs them in order and stops at
   * the first it cannot, so the ones that arrived are the first `count`: the
   * caller matches them to the first entries and refuses the rest.
   */
  fds_out[0] = count;
  return make_int(env, received);
}

/* ---- Poller: a uv_poll_t whose events call back into JavaScript. ---- */

typedef struct {
  uv_poll_t poll;
  napi_env env;
  napi_ref callback;
  napi_ref self;
  napi_async_context context;
  int closed;        /* close() or the finalizer ran: no more callbacks */
  int handle_closed; /* libuv is done with the uv_poll_t */
  int finalized;     /* the JavaScript object is gone */
} poller_t;

/* The struct is freed once libuv and the garbage collector are both done with it. */
static void poller_on_close(uv_handle_t* handle) {
  poller_t* poller = handle->data;
  poller->handle_closed = 1;
  if (poller->finalized) free(poller);
}

static void poller_release(poller_t* poller) {
  if (poller->closed) return;
  poller->closed = 1;
  uv_poll_stop(&poller->poll);
  if (poller->callback != NULL) napi_delete_reference(poller->env, poller->callback);
  if (poller->context != NULL) napi_async_destroy(poller->env, poller->context);
  poller->callback = NULL;
  poller->context = NULL;
  uv_close((uv_handle_t*)&poller->poll, poller_on_close);
}

static void poller_on_event(uv_poll_t* handle, int status, int events) {
  poller_t* poller = handle->data;
  if (poller->closed || poller->callback == NULL) return;
  napi_env env = poller->env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  napi_value callback, resource, argv[2], result;
  if (napi_get_reference_value(env, poller->callback, &callback) == napi_ok && callback != NULL &&
      napi_get_reference_value(env, poller->self, &resource) == napi_ok && resource != NULL) {
    napi_create_int32(env, status, &argv[0]);
    napi_create_int32(env, events, &argv[1]);
    napi_status call = napi_make_callback(env, poller->context, resource, callback, 2, argv, &result);
    if (call == napi_pending_exception) {
      napi_value error;
      napi_get_and_clear_last_exception(env, &error);
      napi_fatal_exception(env, error);
    }
  }
  napi_close_handle_scope(env, scope);
}

static void poller_finalize(napi_env env, void* data, void* hint) {
  poller_t* poller = data;
  if (poller->self != NULL) napi_delete_reference(env, poller->self);
  poller->self = NULL;
  poller_release(poller);
  poller->finalized = 1;
  if (poller->handle_closed) free(poller);
}

static poller_t* unwrap_poller(napi_env env, napi_callback_info info, size_t* argc, napi_value* argv) {
  napi_value self;
  void* data;
  if (napi_get_cb_info(env, info, argc, argv, &self, NULL) != napi_ok) return NULL;
  if (napi_unwrap(env, self, &data) != napi_ok) return NULL;
  return data;
}

static napi_value poller_new(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], self;
  int32_t fd;
  CHECK(napi_get_cb_info(env, info, &argc, argv, &self, NULL));
  napi_valuetype type;
  if (argc < 2 || !get_fd(env, argv[0], &fd) || napi_typeof(env, argv[1], &type) != napi_ok || type != napi_function) {
    napi_throw_type_error(env, NULL, "Poller(fd, callback)");
    return NULL;
  }
  uv_loop_t* loop;
  CHECK(napi_get_uv_event_loop(env, &loop));
  poller_t* poller = calloc(1, sizeof *poller);
  if (poller == NULL) {
    napi_throw_error(env, NULL, "out of memory");
    return NULL;
  }
  int err = uv_poll_init(loop, &poller->poll, fd);
  if (err != 0) {
    free(poller);
    napi_throw_error(env, NULL, uv_strerror(err));
    return NULL;
  }
  poller->poll.data = poller;
  poller->env = env;
  napi_value name;
  CHECK(napi_create_string_utf8(env, "StickyFdChannel", NAPI_AUTO_LENGTH, &name));
  CHECK(napi_async_init(env, self, name, &poller->context));
  CHECK(napi_create_reference(env, argv[1], 1, &poller->callback));
  /* Weak: the JS object's lifetime is the owner's business (close() ends it). */
  CHECK(napi_wrap(env, self, poller, poller_finalize, NULL, &poller->self));
  return self;
}

static napi_value poller_start(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int32_t events;
  poller_t* poller = unwrap_poller(env, info, &argc, argv);
  if (poller == NULL || poller->closed) return make_int(env, -EBADF);
  if (argc < 1 || napi_get_value_int32(env, argv[0], &events) != napi_ok) return make_int(env, -EINVAL);
  events &= UV_READABLE | UV_WRITABLE;
  if (events == 0) return make_int(env, uv_poll_stop(&poller->poll));
  return make_int(env, uv_poll_start(&poller->poll, events, poller_on_event));
}

static napi_value poller_stop(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  poller_t* poller = unwrap_poller(env, info, &argc, NULL);
  if (poller == NULL || poller->closed) return make_int(env, -EBADF);
  return make_int(env, uv_poll_stop(&poller->poll));
}

static napi_value poller_close(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  poller_t* poller = unwrap_poller(env, info, &argc, NULL);
  if (poller == NULL) return make_int(env, -EBADF);
  poller_release(poller);
  return make_int(env, 0);
}

static napi_value poller_unref(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  poller_t* poller = unwrap_poller(env, info, &argc, NULL);
  if (poller == NULL || poller->closed) return make_int(env, -EBADF);
  uv_unref((uv_handle_t*)&poller->poll);
  return make_int(env, 0);
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor methods[] = {
      {"start", NULL, poller_start, NULL, NULL, NULL, napi_default, NULL},
      {"stop", NULL, poller_stop, NULL, NULL, NULL, napi_default, NULL},
      {"close", NULL, poller_close, NULL, NULL, NULL, napi_default, NULL},
      {"unref", NULL, poller_unref, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_value poller_class;
  CHECK(napi_define_class(env, "Poller", NAPI_AUTO_LENGTH, poller_new, NULL, 4, methods, &poller_class));
  napi_value fn;
  CHECK(napi_create_function(env, "socketpair", NAPI_AUTO_LENGTH, js_socketpair, NULL, &fn));
  CHECK(napi_set_named_property(env, exports, "socketpair", fn));
  CHECK(napi_create_function(env, "setNonBlocking", NAPI_AUTO_LENGTH, js_set_nonblocking, NULL, &fn));
  CHECK(napi_set_named_property(env, exports, "setNonBlocking", fn));
  CHECK(napi_create_function(env, "send", NAPI_AUTO_LENGTH, js_send, NULL, &fn));
  CHECK(napi_set_named_property(env, exports, "send", fn));
  CHECK(napi_create_function(env, "recv", NAPI_AUTO_LENGTH, js_recv, NULL, &fn));
  CHECK(napi_set_named_property(env, exports, "recv", fn));
  CHECK(napi_create_function(env, "close", NAPI_AUTO_LENGTH, js_close, NULL, &fn));
  CHECK(napi_set_named_property(env, exports, "close", fn));
  CHECK(napi_set_named_property(env, exports, "Poller", poller_class));
  CHECK(napi_set_named_property(env, exports, "READABLE", make_int(env, UV_READABLE)));
  CHECK(napi_set_named_property(env, exports, "WRITABLE", make_int(env, UV_WRITABLE)));
  CHECK(napi_set_named_property(env, exports, "MAX_FDS", make_int(env, MAX_FDS)));
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
