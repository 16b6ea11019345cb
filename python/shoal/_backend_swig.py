"""The SWIG backend: the same thin, 1:1 interface as the cffi one (see BACKEND.md),
over the module ``shoal_swig`` that swig/shoal.i generates (built by CMake into
``<build>/swig/python``; put that directory on ``sys.path``).

Selected with ``SHOAL_PYTHON_BACKEND=swig``. Results are plain ``shoal_result_t``
integers, handles are SWIG pointer objects, payloads are given as
``(address, size)`` (``shoal_swig_chunk_view``), which the layer exports with its own
buffer exporter (``shoal._payload``). The module
releases the GIL around every C call, so blocking calls let other threads run.
"""

import shoal_swig as _s

NAME = "swig"


def _text(s):
    return "" if s is None else s


# ---- library ---------------------------------------------------------------

def version():
    return _text(_s.shoal_version())


def abi_version():
    return int(_s.shoal_abi_version())


def strerror(rc):
    return _text(_s.shoal_strerror(rc))


def last_error():
    return _text(_s.shoal_last_error_message())


# ---- runtime -----------------------------------------------------------------

def runtime_create(name, domain=None, runtime_dir=None, connect_timeout_ns=None):
    opts = _s.shoal_runtime_options_t()  # initialised; owns copies of its strings
    if domain is not None:
        opts.domain = domain
    if runtime_dir is not None:
        opts.runtime_dir = runtime_dir
    if connect_timeout_ns is not None:
        opts.connect_timeout_ns = connect_timeout_ns
    return _s.shoal_runtime_create(name, opts)


def runtime_destroy(rt):
    _s.shoal_runtime_destroy(rt)


def runtime_domain(rt):
    return _text(_s.shoal_runtime_domain(rt))


def pool_count(rt):
    return int(_s.shoal_runtime_pool_count(rt))


def pool_info(rt, index):
    rc, info = _s.shoal_runtime_pool_info(rt, index)
    if rc != 0:
        return rc, None
    return rc, (info.chunk_size, info.chunk_count, info.in_use, info.high_water,
                info.alloc_failures)


def port_slots(rt):
    return int(_s.shoal_runtime_port_slots(rt))


def port_info(rt, slot):
    rc, info = _s.shoal_runtime_port_info(rt, slot)
    if rc != 0:
        return rc, None
    return rc, (int(info.kind), info.id, info.pid, info.held, info.queued,
                info.queue_capacity, info.sent, info.received, info.dropped, info.stale,
                _text(info.service), _text(info.process))


# ---- publish / subscribe -------------------------------------------------------

def publisher_create(rt, topic, history=None, full_policy=None, send_timeout_ns=None):
    opts = _s.shoal_publisher_options_t()
    if history is not None:
        opts.history = history
    if full_policy is not None:
        opts.full_policy = full_policy
    if send_timeout_ns is not None:
        opts.send_timeout_ns = send_timeout_ns
    return _s.shoal_publisher_create(rt, topic, opts)


def publisher_destroy(pub):
    _s.shoal_publisher_destroy(pub)


publisher_loan = _s.shoal_publisher_loan
publisher_publish = _s.shoal_publisher_publish
publisher_subscriber_count = _s.shoal_publisher_subscriber_count


def subscriber_create(rt, topic, queue_capacity=None, history=None, ignore_own_process=None):
    opts = _s.shoal_subscriber_options_t()
    if queue_capacity is not None:
        opts.queue_capacity = queue_capacity
    if history is not None:
        opts.history = history
    if ignore_own_process is not None:
        opts.ignore_own_process = ignore_own_process
    return _s.shoal_subscriber_create(rt, topic, opts)


def subscriber_destroy(sub):
    _s.shoal_subscriber_destroy(sub)


subscriber_take = _s.shoal_subscriber_take


# ---- request / response ----------------------------------------------------------

def _port_options(opts, queue_capacity, full_policy, send_timeout_ns):
    if queue_capacity is not None:
        opts.queue_capacity = queue_capacity
    if full_policy is not None:
        opts.full_policy = full_policy
    if send_timeout_ns is not None:
        opts.send_timeout_ns = send_timeout_ns
    return opts


def client_create(rt, service, queue_capacity=None, full_policy=None, send_timeout_ns=None,
                  ignore_own_process=None):
    opts = _port_options(_s.shoal_client_options_t(), queue_capacity, full_policy,
                         send_timeout_ns)
    if ignore_own_process is not None:
        opts.ignore_own_process = ignore_own_process
    return _s.shoal_client_create(rt, service, opts)


def client_destroy(client):
    _s.shoal_client_destroy(client)


client_loan = _s.shoal_client_loan
client_send = _s.shoal_client_send
client_take = _s.shoal_client_take
client_call = _s.shoal_client_call
client_server_count = _s.shoal_client_server_count


def server_create(rt, service, queue_capacity=None, full_policy=None, send_timeout_ns=None):
    opts = _port_options(_s.shoal_server_options_t(), queue_capacity, full_policy,
                         send_timeout_ns)
    return _s.shoal_server_create(rt, service, opts)


def server_destroy(server):
    _s.shoal_server_destroy(server)


server_take = _s.shoal_server_take
server_loan_response = _s.shoal_server_loan_response
server_send = _s.shoal_server_send


# ---- chunks ----------------------------------------------------------------------

# (address, size) of the payload as ints, (0, 0) for a chunk without one; the layer
# exports it with shoal._payload.Payload.
chunk_view = _s.shoal_swig_chunk_view


chunk_size = _s.shoal_chunk_size
chunk_set_size = _s.shoal_chunk_set_size
chunk_sequence_id = _s.shoal_chunk_sequence_id
chunk_release = _s.shoal_chunk_release


# ---- waitset -----------------------------------------------------------------------

waitset_create = _s.shoal_waitset_create


def waitset_destroy(ws):
    _s.shoal_waitset_destroy(ws)


waitset_attach_subscriber = _s.shoal_waitset_attach_subscriber
waitset_attach_server = _s.shoal_waitset_attach_server
waitset_attach_client = _s.shoal_waitset_attach_client
waitset_detach = _s.shoal_waitset_detach


def waitset_wait(ws, capacity, timeout_ns):
    return _s.shoal_waitset_wait(ws, max(1, capacity), timeout_ns)


waitset_fd = _s.shoal_waitset_fd


# ---- waits without owning the port, sliced sends (issue 11) ----------------------

subscriber_wait_ready = _s.shoal_subscriber_wait_ready
client_wait_ready = _s.shoal_client_wait_ready
server_wait_ready = _s.shoal_server_wait_ready
publisher_publish_slice = _s.shoal_publisher_publish_slice
client_send_slice = _s.shoal_client_send_slice   # (rc, sequence id)
server_send_slice = _s.shoal_server_send_slice


# ---- the C functions of the layer's hot paths (BACKEND.md: function_table) ----------

def function_table():
    """{name: address} of the C functions shoal._payload calls directly."""
    return _s.shoal_swig_function_table()


def handle_address(handle):
    """The address of a handle (a SWIG pointer object) as an int."""
    return int(handle)
