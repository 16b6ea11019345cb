"""The cffi backend: a thin, 1:1 layer over the C ABI (see BACKEND.md).

Every function here is a direct call of one ``shoal_*`` function; nothing is
retried or translated into exceptions. Results come back as plain
integers (``shoal_result_t``), handles as opaque cffi pointers. The Pythonic
layer (``shoal._api``) is written against this module's interface only.

cffi in API mode releases the GIL around every C call, so blocking calls (take,
call, waitset_wait, runtime_create with a connect timeout) let other Python
threads run.
"""

import threading

from ._shoal_cffi import ffi, lib

NAME = "cffi"

_NULL = ffi.NULL



_tls = threading.local()


def _chunk_out():
    """A per-thread `shoal_chunk_t **` out-parameter: allocating one per call costs
    more than the call (the C function fills it before the GIL is taken back)."""
    out = getattr(_tls, "chunk_out", None)
    if out is None:
        out = _tls.chunk_out = ffi.new("shoal_chunk_t **")
    return out

def _text(ptr):
    return "" if ptr == _NULL else ffi.string(ptr).decode("utf-8", "replace")


def _cstr(s):
    return _NULL if s is None else s.encode("utf-8")


# ---- library ---------------------------------------------------------------

def version():
    return _text(lib.shoal_version())


def abi_version():
    return int(lib.shoal_abi_version())


def strerror(rc):
    return _text(lib.shoal_strerror(rc))


def last_error():
    return _text(lib.shoal_last_error_message())


# ---- runtime -----------------------------------------------------------------

def runtime_create(name, domain=None, runtime_dir=None, connect_timeout_ns=None):
    opts = ffi.new("shoal_runtime_options_t *")
    lib.shoal_runtime_options_init(opts, lib.SHOAL_RUNTIME_OPTIONS_VERSION)
    # cffi cannot store bytes in a char* field: own the strings until the call returns.
    c_domain = _NULL if domain is None else ffi.new("char[]", domain.encode("utf-8"))
    c_dir = _NULL if runtime_dir is None else ffi.new("char[]", runtime_dir.encode("utf-8"))
    opts.domain = c_domain
    opts.runtime_dir = c_dir
    if connect_timeout_ns is not None:
        opts.connect_timeout_ns = connect_timeout_ns
    out = ffi.new("shoal_runtime_t **")
    rc = lib.shoal_runtime_create(out, _cstr(name), opts)
    return rc, (out[0] if rc == 0 else None)


def runtime_destroy(rt):
    lib.shoal_runtime_destroy(rt)


def runtime_domain(rt):
    return _text(lib.shoal_runtime_domain(rt))


def pool_count(rt):
    return int(lib.shoal_runtime_pool_count(rt))


def pool_info(rt, index):
    info = ffi.new("shoal_pool_info_t *")
    info.version = lib.SHOAL_POOL_INFO_VERSION
    rc = lib.shoal_runtime_pool_info(rt, index, info)
    if rc != 0:
        return rc, None
    return rc, (info.chunk_size, info.chunk_count, info.in_use, info.high_water,
                info.alloc_failures)


def port_slots(rt):
    return int(lib.shoal_runtime_port_slots(rt))


def port_info(rt, slot):
    info = ffi.new("shoal_port_info_t *")
    info.version = lib.SHOAL_PORT_INFO_VERSION
    rc = lib.shoal_runtime_port_info(rt, slot, info)
    if rc != 0:
        return rc, None
    return rc, (int(info.kind), info.id, info.pid, info.held, info.queued,
                info.queue_capacity, info.sent, info.received, info.dropped, info.stale,
                _text(info.service), _text(info.process))


# ---- publish / subscribe -------------------------------------------------------

def publisher_create(rt, topic, history=None, full_policy=None, send_timeout_ns=None):
    opts = ffi.new("shoal_publisher_options_t *")
    lib.shoal_publisher_options_init(opts, lib.SHOAL_PUBLISHER_OPTIONS_VERSION)
    if history is not None:
        opts.history = history
    if full_policy is not None:
        opts.full_policy = full_policy
    if send_timeout_ns is not None:
        opts.send_timeout_ns = send_timeout_ns
    out = ffi.new("shoal_publisher_t **")
    rc = lib.shoal_publisher_create(out, rt, _cstr(topic), opts)
    return rc, (out[0] if rc == 0 else None)


def publisher_destroy(pub):
    lib.shoal_publisher_destroy(pub)


def publisher_loan(pub, size):
    out = _chunk_out()
    rc = lib.shoal_publisher_loan(pub, size, out)
    return rc, (out[0] if rc == 0 else None)


def publisher_publish(pub, chunk):
    return lib.shoal_publisher_publish(pub, chunk)


def publisher_subscriber_count(pub):
    return int(lib.shoal_publisher_subscriber_count(pub))


def subscriber_create(rt, topic, queue_capacity=None, history=None, ignore_own_process=None):
    opts = ffi.new("shoal_subscriber_options_t *")
    lib.shoal_subscriber_options_init(opts, lib.SHOAL_SUBSCRIBER_OPTIONS_VERSION)
    if queue_capacity is not None:
        opts.queue_capacity = queue_capacity
    if history is not None:
        opts.history = history
    if ignore_own_process is not None:
        opts.ignore_own_process = ignore_own_process
    out = ffi.new("shoal_subscriber_t **")
    rc = lib.shoal_subscriber_create(out, rt, _cstr(topic), opts)
    return rc, (out[0] if rc == 0 else None)


def subscriber_destroy(sub):
    lib.shoal_subscriber_destroy(sub)


def subscriber_take(sub, timeout_ns):
    out = _chunk_out()
    rc = lib.shoal_subscriber_take(sub, out, timeout_ns)
    return rc, (out[0] if rc == 0 else None)


# ---- request / response ----------------------------------------------------------

def client_create(rt, service, queue_capacity=None, full_policy=None, send_timeout_ns=None,
                  ignore_own_process=None):
    opts = ffi.new("shoal_client_options_t *")
    lib.shoal_client_options_init(opts, lib.SHOAL_CLIENT_OPTIONS_VERSION)
    if queue_capacity is not None:
        opts.queue_capacity = queue_capacity
    if full_policy is not None:
        opts.full_policy = full_policy
    if send_timeout_ns is not None:
        opts.send_timeout_ns = send_timeout_ns
    if ignore_own_process is not None:
        opts.ignore_own_process = ignore_own_process
    out = ffi.new("shoal_client_t **")
    rc = lib.shoal_client_create(out, rt, _cstr(service), opts)
    return rc, (out[0] if rc == 0 else None)


def client_destroy(client):
    lib.shoal_client_destroy(client)


def client_loan(client, size):
    out = _chunk_out()
    rc = lib.shoal_client_loan(client, size, out)
    return rc, (out[0] if rc == 0 else None)


def client_send(client, chunk):
    seq = ffi.new("uint64_t *")
    rc = lib.shoal_client_send(client, chunk, seq)
    return rc, (int(seq[0]) if rc == 0 else None)


def client_take(client, timeout_ns):
    out = _chunk_out()
    rc = lib.shoal_client_take(client, out, timeout_ns)
    return rc, (out[0] if rc == 0 else None)


def client_call(client, request, timeout_ns):
    out = _chunk_out()
    rc = lib.shoal_client_call(client, request, out, timeout_ns)
    return rc, (out[0] if rc == 0 else None)


def client_server_count(client):
    return int(lib.shoal_client_server_count(client))


def server_create(rt, service, queue_capacity=None, full_policy=None, send_timeout_ns=None):
    opts = ffi.new("shoal_server_options_t *")
    lib.shoal_server_options_init(opts, lib.SHOAL_SERVER_OPTIONS_VERSION)
    if queue_capacity is not None:
        opts.queue_capacity = queue_capacity
    if full_policy is not None:
        opts.full_policy = full_policy
    if send_timeout_ns is not None:
        opts.send_timeout_ns = send_timeout_ns
    out = ffi.new("shoal_server_t **")
    rc = lib.shoal_server_create(out, rt, _cstr(service), opts)
    return rc, (out[0] if rc == 0 else None)


def server_destroy(server):
    lib.shoal_server_destroy(server)


def server_take(server, timeout_ns):
    out = _chunk_out()
    rc = lib.shoal_server_take(server, out, timeout_ns)
    return rc, (out[0] if rc == 0 else None)


def server_loan_response(server, request, size):
    out = _chunk_out()
    rc = lib.shoal_server_loan_response(server, request, size, out)
    return rc, (out[0] if rc == 0 else None)


def server_send(server, chunk):
    return lib.shoal_server_send(server, chunk)


# ---- chunks ----------------------------------------------------------------------

def chunk_view(chunk):
    """(address, size) of the payload as ints; (0, 0) for a chunk without one."""
    view = lib.shoal_py_chunk_view(chunk)  # address and size in one call
    return view.addr, view.size


def chunk_size(chunk):
    return int(lib.shoal_chunk_size(chunk))


def chunk_set_size(chunk, size):
    return lib.shoal_chunk_set_size(chunk, size)


def chunk_sequence_id(chunk):
    return int(lib.shoal_chunk_sequence_id(chunk))


def chunk_release(chunk):
    return lib.shoal_chunk_release(chunk)


# ---- waitset -----------------------------------------------------------------------

def waitset_create(rt):
    out = ffi.new("shoal_waitset_t **")
    rc = lib.shoal_waitset_create(out, rt)
    return rc, (out[0] if rc == 0 else None)


def waitset_destroy(ws):
    lib.shoal_waitset_destroy(ws)


def waitset_attach_subscriber(ws, sub, tag):
    return lib.shoal_waitset_attach_subscriber(ws, sub, tag)


def waitset_attach_server(ws, server, tag):
    return lib.shoal_waitset_attach_server(ws, server, tag)


def waitset_attach_client(ws, client, tag):
    return lib.shoal_waitset_attach_client(ws, client, tag)


def waitset_detach(ws, tag):
    return lib.shoal_waitset_detach(ws, tag)


def waitset_wait(ws, capacity, timeout_ns):
    tags = ffi.new("uint64_t[]", max(1, capacity))
    count = ffi.new("size_t *")
    rc = lib.shoal_waitset_wait(ws, tags, capacity, count, timeout_ns)
    if rc != 0:
        return rc, []
    return rc, [int(tags[i]) for i in range(count[0])]


def waitset_fd(ws):
    fd = ffi.new("int *")
    rc = lib.shoal_waitset_fd(ws, fd)
    return rc, (int(fd[0]) if rc == 0 else None)


# ---- optional fast paths (BACKEND.md): a loan or take and its payload in one call

def _got(g):
    if g.rc != 0:
        return g.rc, None, 0, 0
    return 0, g.chunk, g.addr, g.size


def publisher_loan_view(publisher, size):
    return _got(lib.shoal_py_publisher_loan(publisher, size))


def client_loan_view(client, size):
    return _got(lib.shoal_py_client_loan(client, size))


def server_loan_response_view(server, request, size):
    return _got(lib.shoal_py_server_loan_response(server, request, size))


def subscriber_take_view(subscriber, timeout_ns):
    return _got(lib.shoal_py_subscriber_take(subscriber, timeout_ns))


def client_take_view(client, timeout_ns):
    return _got(lib.shoal_py_client_take(client, timeout_ns))


def server_take_view(server, timeout_ns):
    return _got(lib.shoal_py_server_take(server, timeout_ns))


# ---- waits without owning the port, sliced sends (issue 11) ----------------------

def subscriber_wait_ready(sub, timeout_ns):
    return lib.shoal_subscriber_wait_ready(sub, timeout_ns)


def client_wait_ready(client, timeout_ns):
    return lib.shoal_client_wait_ready(client, timeout_ns)


def server_wait_ready(server, timeout_ns):
    return lib.shoal_server_wait_ready(server, timeout_ns)


def publisher_publish_slice(pub, chunk, slice_ns):
    return lib.shoal_publisher_publish_slice(pub, chunk, slice_ns)


def client_send_slice(client, chunk, slice_ns):
    seq = ffi.new("uint64_t *")
    rc = lib.shoal_client_send_slice(client, chunk, seq, slice_ns)
    return rc, (int(seq[0]) if rc == 0 else None)


def server_send_slice(server, chunk, slice_ns):
    return lib.shoal_server_send_slice(server, chunk, slice_ns)


# ---- the C functions of the layer's hot paths (BACKEND.md: function_table) ----------

_HOT_FUNCTIONS = (
    "shoal_publisher_loan", "shoal_publisher_publish", "shoal_subscriber_take",
    "shoal_client_loan", "shoal_client_send", "shoal_client_take", "shoal_server_take",
    "shoal_server_loan_response", "shoal_server_send", "shoal_chunk_payload",
    "shoal_chunk_size", "shoal_chunk_set_size", "shoal_chunk_sequence_id",
    "shoal_chunk_release", "shoal_publisher_publish_slice", "shoal_client_send_slice",
    "shoal_server_send_slice", "shoal_subscriber_wait_ready", "shoal_client_wait_ready",
    "shoal_server_wait_ready",
)


def function_table():
    """{name: address} of the C functions shoal._payload calls directly."""
    return {name: int(ffi.cast("uintptr_t", ffi.addressof(lib, name)))
            for name in _HOT_FUNCTIONS}


def handle_address(handle):
    """The address of a handle (a cffi pointer) as an int."""
    return int(ffi.cast("uintptr_t", handle))
