"""The Pythonic layer of shoal, written once over a backend object.

The backend (``shoal._backend_cffi`` or ``shoal._backend_swig``, see BACKEND.md)
is a thin 1:1 mapping of the C ABI. Everything here only uses that interface:
ownership (a chunk is consumed by exactly one of send/publish/release), context
managers, payloads exported by ``shoal._payload`` (one small C buffer exporter that
counts its exports), exceptions, timeouts in seconds, closing on garbage collection.

Threads: one port may be used from several threads; calls on one port are
serialized by a per-port lock (the C rule is "one thread at a time per port").
No lock is held while a take, call or waitset wait sleeps: it sleeps in the C
library's readiness wait (``shoal_*_wait_ready``, which may overlap other calls on
the port), so another thread's loan or release of the same port goes ahead at once.
Every wait sleeps in slices of at most WAIT_SLICE and is cut short by a signal, so
Ctrl-C raises KeyboardInterrupt at once; WAIT-policy sends use the C library's
sliced sends for the same reason (a send cut short keeps its chunk: it is released,
never lost). Waits release the GIL.

asyncio: one waitset (and its file descriptor, registered with ``loop.add_reader``)
per runtime and event loop serves every ``take_async``/``call_async``/``async for``
of that loop, however many ports are awaited; no thread or waitset per port.

Payload lifetime: ``chunk.payload`` is a memoryview of a ``shoal._payload.Payload``, the
one buffer exporter of the payload, made by the chunk's C base (``ChunkBase``). When
the chunk is sent or released, that view is released too. Something made from it
that outlives the chunk object (a slice, ``numpy.frombuffer(payload)``,
``chunk.array()``) is counted by the exporter: a send is refused while one lives, and
a release is deferred until the last one dies (the chunk, its port and its runtime
stay mapped until then), so such an object never sees another message's bytes.

Speed: the non-blocking hot paths (loan, try_take, loan_response, send, release, the
``with`` block, ``payload``, ``sequence_id``) are single C calls of ``shoal._payload``
into the C library, through the function pointers the backend hands over (bind()).
"""

import asyncio
import atexit
import collections
import enum
import numbers
import os
import re
import sys
import threading
import time
import types
import warnings
import weakref

from . import _backend
from . import _payload
from .errors import (ClosedError, Error, PayloadExportedError, ReleasedError, Timeout,
                     error_class)

backend = _backend.load()

# Backend functions of the chunk paths, bound once.
_chunk_view = backend.chunk_view
_chunk_sequence_id = backend.chunk_sequence_id
_chunk_release = backend.chunk_release


def _with_view(name):
    """The backend's `<name>_view` fast path -> (rc, chunk, address, size), or the plain
    function followed by chunk_view() (BACKEND.md)."""
    fast = getattr(backend, name + "_view", None)
    if fast is not None:
        return fast
    plain = getattr(backend, name)

    def slow(*args):
        rc, chunk = plain(*args)
        if rc != _OK:
            return rc, None, 0, 0
        address, size = _chunk_view(chunk)
        return rc, chunk, address, size
    slow.__name__ = name + "_view"
    return slow



# Result codes used by the layer itself (values of shoal_result_t).
_OK = 0
_ERR_TIMEOUT = 2
_ERR_POOL_EXHAUSTED = 3
_ERR_HELD_LIMIT = 6
_ERR_SERVER_GONE = 12
_ERR_NOT_FOUND = 22

#: Longest single blocking C call made for an unbounded or long wait (seconds): a
#: signal (Ctrl-C) is handled by Python at most this long after it arrived. (The
#: sliced sends of shoal._payload use the same 50 ms, SEND_SLICE_NS.)
WAIT_SLICE = 0.05

__all__ = [
    "Runtime", "Publisher", "Subscriber", "Client", "Server", "WaitSet",
    "Chunk", "Loan", "Sample", "Request", "Response",
    "FullPolicy", "PortKind", "PoolInfo", "PortInfo", "version", "abi_version",
    "backend_name",
]


def version():
    """Version string of the C library compiled into the backend ("0.1.0")."""
    return backend.version()


def abi_version():
    return backend.abi_version()


def backend_name():
    """``"cffi"`` or ``"swig"``: the backend this process runs on."""
    return backend.NAME


class FullPolicy(enum.IntEnum):
    """What a send does when the receiver's queue is full."""
    DROP_OLDEST = 0  #: the oldest queued chunk is released (and counted as dropped)
    REJECT = 1       #: the send fails with QueueFullError
    WAIT = 2         #: the sender waits up to send_timeout, then QueueFullError


class PortKind(enum.IntEnum):
    PUBLISHER = 1
    SUBSCRIBER = 2
    CLIENT = 3
    SERVER = 4


PoolInfo = collections.namedtuple(
    "PoolInfo", "index chunk_size chunk_count in_use high_water alloc_failures")
PortInfo = collections.namedtuple(
    "PortInfo", "slot kind id pid held queued queue_capacity sent received dropped stale "
                "service process")


# ---- helpers -------------------------------------------------------------------------

_U32_MAX = (1 << 32) - 1
_U64_MAX = (1 << 64) - 1
_NS_MAX = (1 << 63) - 1      # int64_t nanoseconds
_SECONDS_MAX = _NS_MAX / 1e9  # a timeout this long or longer is no bound at all


def _shown(value, limit=60):
    """`value` as a message echoes it: repr, shortened when long."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 70:
        return "an int of %d bits" % value.bit_length()
    text = repr(value)
    if len(text) <= limit:
        return text
    try:
        length = " (%d characters)" % len(value) if isinstance(value, str) else \
            " (%d bytes)" % len(value) if isinstance(value, (bytes, bytearray)) else ""
    except TypeError:
        length = ""
    return text[:limit] + "..." + length


def _name(value, what):
    """A topic, service, process or domain name: a str that C can hold."""
    if not isinstance(value, str):
        hint = " (decode it first, e.g. name.decode())" if isinstance(
            value, (bytes, bytearray)) else ""
        raise TypeError("%s must be a str, not %s%s" % (what, type(value).__name__, hint))
    if "\0" in value:
        raise ValueError("%s %s contains a NUL character ('\\0'), which a name cannot hold"
                         % (what, _shown(value)))
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("%s %s is not encodable as UTF-8 (a lone surrogate?)"
                         % (what, _shown(value))) from None
    return value


def _path(value, what):
    if value is None:
        return None
    value = os.fspath(value) if isinstance(value, os.PathLike) else value
    return _name(value, what)


def _int_arg(value, what, lo, hi):
    """`value` as an int in lo..hi, or a TypeError / ValueError naming `what`."""
    if isinstance(value, bool) or not hasattr(type(value), "__index__"):
        raise TypeError("%s must be an int, not %s %s"
                        % (what, type(value).__name__, _shown(value)))
    value = value.__index__()
    if not lo <= value <= hi:
        raise ValueError("%s must be %d..%s, not %s" % (
            what, lo, "2**64-1" if hi == _U64_MAX else "2**32-1" if hi == _U32_MAX else hi,
            _shown(value)))
    return value


def _size_arg(size, what="size"):
    # the type test first: the loans of busy loops pass a plain int
    if type(size) is int and 0 < size <= _U64_MAX:
        return size
    return _int_arg(size, what, 1, _U64_MAX)


def _seconds(value, what="timeout"):
    """A timeout in seconds: None (no bound) or a number >= 0; inf counts as None."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError("%s must be a number of seconds or None (no bound), not %s %s"
                        % (what, type(value).__name__, _shown(value)))
    value = float(value)
    if value != value:
        raise ValueError("%s is NaN: give a number of seconds, or None for no bound" % what)
    if value < 0:
        raise ValueError("%s must be >= 0 seconds (0: do not wait, None: no bound), not %s"
                         % (what, _shown(value)))
    if value >= _SECONDS_MAX:
        return None
    return value


def _pythonic(detail):
    """The C library's detail message, in the words of the Python API."""
    if "shoal" not in detail:
        return detail
    detail = _CHUNK_TOO_LARGE_HINT.sub(
        lambda m: "add a pool to shoal.Daemon(pools=...), e.g. pools={..., %r: %s}"
        % (m.group(1), m.group(2)), detail)
    detail = _DAEMON_CONFIG.sub("the config shoal.Daemon wrote from its pools= and limits=",
                                detail)
    return _C_FUNCTION.sub(lambda m: _C_FUNCTIONS.get(m.group(0), m.group(0)), detail)


# A config file written by shoal.Daemon (a temporary directory of its own).
_DAEMON_CONFIG = re.compile(r"[^\s(]*/shoal-daemon-[A-Za-z0-9_]+/[^\s,;)]+\.conf")
_CHUNK_TOO_LARGE_HINT = re.compile(
    r"add a pool to the \[pools\] section of [^\s(]*/shoal-daemon-[A-Za-z0-9_]+/[^\s,;)]+"
    r"\.conf, e\.g\. '(\w+) = (\d+)'")
_C_FUNCTION = re.compile(r"\bshoal_[a-z_]+\(\)")
_C_FUNCTIONS = {
    "shoal_chunk_release()": "release() (or the end of its `with` block)",
    "shoal_server_loan_response()": "request.loan_response()",
    "shoal_runtime_options_init()": "shoal.Runtime()",
}


_LOST_REQUEST = re.compile(r"request (\d+) on service .* was lost")


def _lost_request(detail):
    """The sequence id of the request a SERVER_GONE take reports lost (None: unknown)."""
    m = _LOST_REQUEST.search(detail)
    return int(m.group(1)) if m else None


def _raise(rc, context, port=None):
    """Raise the exception for result `rc`; call right after the failing C call. With
    `port`, a limit error says how many of its chunks wait for payload exports."""
    raise _exception(rc, context, port)


def _exception(rc, context, port=None):
    """The exception _raise() raises, not raised (asyncio sets it on futures)."""
    detail = _pythonic(backend.last_error())
    name = backend.strerror(rc)
    message = "%s: %s" % (context, detail or name) if context else (detail or name)
    if port is not None and port._deferred and rc in (_ERR_POOL_EXHAUSTED, _ERR_HELD_LIMIT):
        message += (" (%d chunk(s) of %s were released but still wait for a view or numpy "
                    "array of their payload that outlived them; drop those)"
                    % (port._deferred, port._describe()))
    return error_class(rc)(message, code=rc, name=name, detail=detail)


def _check(rc, context):
    if rc != _OK:
        _raise(rc, context)


def _timeout(what, timeout, message):
    """The Timeout of a wait of the layer: it names the timeout the caller gave."""
    text = "%s: %s (timeout=%s)" % (what, message, "%g s" % timeout if timeout else "0: no wait")
    return Timeout(text, code=_ERR_TIMEOUT, name="SHOAL_ERR_TIMEOUT", detail=message)


def _within(timeout):
    return "within %g s" % timeout if timeout else "right now"


def _timeout_ns(timeout):
    """Validated seconds (None or >= 0) to the C convention: None -> forever (-1)."""
    if timeout is None:
        return -1
    if timeout <= 0:
        return 0
    return min(_NS_MAX, max(1, int(timeout * 1e9)))


def _opt_ns(seconds, what):
    """An optional timeout option: None keeps the C default, inf is no bound (-1)."""
    if seconds is None:
        return None
    return _timeout_ns(_seconds(seconds, what))


def _opt_u32(value, what):
    return None if value is None else _int_arg(value, what, 0, _U32_MAX)


def _opt_flag(value, what):
    """A yes/no option: a bool (None keeps the C default); the C field takes 0 or 1."""
    if value is None:
        return None
    if not isinstance(value, bool):
        raise TypeError("%s must be True or False, not %s" % (what, type(value).__name__))
    return int(value)


def _policy(value):
    if value is None:
        return None
    choices = ", ".join(p.name.lower() for p in FullPolicy)
    if isinstance(value, str):
        try:
            return int(FullPolicy[value.upper()])
        except KeyError:
            raise ValueError("full_policy %s: use one of %s or shoal.FullPolicy"
                             % (_shown(value), choices)) from None
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError("full_policy must be a shoal.FullPolicy or one of %s, not %s"
                        % (choices, type(value).__name__))
    try:
        return int(FullPolicy(value))
    except ValueError:
        raise ValueError("full_policy %s: use one of %s or shoal.FullPolicy"
                         % (_shown(value), choices)) from None


_np = None


def _numpy():
    global _np
    if _np is None:
        try:
            import numpy
        except ImportError:
            raise ImportError("chunk.array() needs numpy (pip install numpy); "
                              "chunk.payload is a memoryview without it") from None
        _np = numpy
    return _np


# Chunks that were released by the garbage collector instead of by their owner,
# per port description; the pytest plugin reports them as leaks.
gc_releases = collections.Counter()
_gc_lock = threading.Lock()

# The leak check of the pytest plugin, ``shoal._api._chunk_hook``: None, or
# hook(event, chunk), called with "new" for every chunk object made (every loan and
# take, by the C base) and with "gc" when the garbage collector released a chunk. Set
# only while a checked test runs; it lives in shoal._payload (the module attribute is a
# property of _ApiModule below), so that other code pays one test of a C pointer.
class _ApiModule(types.ModuleType):
    @property
    def _chunk_hook(self):
        return _payload.get_chunk_hook()

    @_chunk_hook.setter
    def _chunk_hook(self, hook):
        _payload.set_chunk_hook(hook)


sys.modules[__name__].__class__ = _ApiModule

_live_runtimes = weakref.WeakSet()
_exiting = False


@atexit.register
def _close_all_at_exit():
    global _exiting
    for rt in list(_live_runtimes):
        try:
            rt.close()
        except Exception:  # pragma: no cover - best effort at interpreter exit
            pass
    # Deferred releases that would run during interpreter teardown are left to the
    # daemon, which takes every chunk back when this process exits.
    _exiting = True


def _chunk_finalized(chunk):
    """Called by ChunkBase's finalizer for a chunk still owned when it is collected."""
    port = chunk._port
    if port is None or port._handle is None or not port._same_process():
        return
    chunk._end()
    with _gc_lock:
        gc_releases[port._describe()] += 1
    hook = _payload.get_chunk_hook()
    if hook is not None:
        hook("gc", chunk)
    warnings.warn("a %s of %s was released by the garbage collector; release it "
                  "with a `with` block" % (chunk._what, port._describe()),
                  ResourceWarning, stacklevel=2)


_payload.bind(backend.function_table(), backend.handle_address, _chunk_finalized)


# ---- chunks --------------------------------------------------------------------------

def _loaned_copy(loan_fn, data):
    """The copying conveniences (publish, call, respond): a loan of len(data) bytes (at
    least 1: an empty message is a 1-byte loan shrunk to size 0) holding a copy of `data`,
    released again if the copy fails."""
    data = memoryview(data).cast("B")
    loan = loan_fn(max(1, len(data)))
    try:
        if len(data):
            loan.payload[:] = data
        else:
            loan.set_size(0)
    except BaseException:
        loan.release()
        raise
    return loan


class Chunk(_payload.ChunkBase):
    """A loaned or taken chunk of shared memory, owned by this object until it is
    sent, published or released.

    ``payload`` is a zero-copy ``memoryview`` on the chunk (format ``"B"``,
    writable for loans, read-only for received chunks); ``array(dtype, shape)`` is a
    numpy array on it, also without a copy. The view is released together with the
    chunk: afterwards ``chunk.payload`` raises :class:`ReleasedError` and the view
    taken from it earlier raises ``ValueError`` (both are ValueErrors).

    What is made from the payload and outlives the chunk object (a slice kept in a
    variable, ``numpy.frombuffer(chunk.payload)``, ``chunk.array()``) keeps the chunk:
    ``send()`` refuses while one lives (PayloadExportedError, nothing sent) and a
    release waits for the last one to be dropped, so it never sees another message.

    Use it as a context manager: the chunk is released at the end of the block,
    also when the block raises, unless it was sent first.

    The lifecycle (``with``, ``release()``, ``send()``, ``payload``, ``size``,
    ``sequence_id``, ``released``) is implemented by the C base class
    ``shoal._payload.ChunkBase``; ``Chunk(port, handle, address, size)`` wraps a chunk
    handle of the backend.
    """

    __slots__ = ()

    _readonly = True
    _what = "chunk"

    # -- state (called by the C base on its error paths)
    def _released_error(self, op):
        return ReleasedError(
            "%s of %s was %s: %s is no longer possible (payload views die with the chunk)"
            % (self._what, self._port._describe(), self._how, op))

    def _exported_error(self, live, op):
        port = self._port
        if op == "resize":
            return PayloadExportedError(
                "resizing a loan of %s refused: %d view(s) or array(s) made from its "
                "payload are still alive; drop them first" % (port._describe(), live))
        return PayloadExportedError(
            "%s refused: %d view(s) or array(s) made from the payload of this %s of "
            "%s are still alive (e.g. a slice of .payload or numpy.frombuffer("
            ".payload) kept in a variable) and could change what the receiver "
            "reads. Nothing was sent and the %s is still yours: drop them (del, or "
            ".release() on a memoryview) and send again, or leave the `with` block "
            "to release it" % (port._send_what, live, self._what, port._describe(),
                               self._what))

    def _alive(self, op):
        if self.released:
            raise self._released_error(op)

    def array(self, dtype="uint8", shape=None):
        """A numpy array of `dtype` and `shape` on the payload, without a copy (read-only
        for received chunks). `shape` None: as many items as the payload holds.

        The array is an export of the payload like a slice of ``payload``: while it
        lives the chunk cannot be sent, and a release waits for it (see Chunk)."""
        np = _numpy()
        dtype = np.dtype(dtype)
        with self._port._lock:
            self._alive("making an array of its payload")
            size = len(self.payload)
            if shape is None:
                if dtype.itemsize == 0 or size % dtype.itemsize:
                    raise ValueError("payload of %d bytes is not a whole number of %s items "
                                     "(%d bytes each): pass a shape" % (size, dtype,
                                                                        dtype.itemsize))
                return np.frombuffer(self._buf, dtype=dtype)
            shape = tuple(int(n) for n in shape) if hasattr(shape, "__iter__") else \
                (int(shape),)
            count = 1
            for n in shape:
                if n < 0:
                    raise ValueError("shape %r: dimensions must be >= 0" % (shape,))
                count *= n
            if count * dtype.itemsize > size:
                raise ValueError("an array of shape %r and dtype %s needs %d bytes; the "
                                 "payload has %d" % (shape, dtype, count * dtype.itemsize,
                                                     size))
            return np.frombuffer(self._buf, dtype=dtype, count=count).reshape(shape)

    def close(self):
        """Release the chunk if this object still owns it (idempotent)."""
        if not self.released:
            self.release()

    def __repr__(self):
        if self.released:
            return "<shoal.%s of %s, %s>" % (type(self).__name__, self._port._describe(),
                                             self._how)
        return "<shoal.%s of %s, %d bytes, sequence id %d>" % (
            type(self).__name__, self._port._describe(), self.size, self.sequence_id)


class Loan(Chunk):
    """A chunk loaned for writing: fill ``payload``, then ``send()`` it (or leave the
    ``with`` block to release it unsent)."""

    __slots__ = ()
    _readonly = False
    _what = "loan"

    def set_size(self, size):
        """Shrink the size the receiver sees (never grow). The payload view is replaced by
        one of the new size (the old one is released); refused while exports of the
        payload (slices, arrays) live."""
        self._resize(_int_arg(size, "size", 0, _U64_MAX))

    send = _payload.chunk_send
    publish = _payload.chunk_publish

    def call(self, timeout=None):
        """Client requests only: send this request and wait for the response carrying its
        sequence id; stale responses met on the way are released. Returns a Response
        (a context manager)."""
        return self._port._call_loan(self, timeout)


class Sample(Chunk):
    """A published sample taken by a subscriber (read-only payload)."""
    __slots__ = ()
    _what = "sample"


class Response(Chunk):
    """A response taken by a client (read-only payload)."""
    __slots__ = ()
    _what = "response"


class Request(Chunk):
    """A request taken by a server (read-only payload)."""
    __slots__ = ()
    _what = "request"

    loan_response = _payload.chunk_loan_response

    def _loan_response_slow(self, size):
        # loan_response() with a size that is not a plain int in range: checked here
        return self.loan_response(_size_arg(size))

    def respond(self, data):
        """Copying convenience: loan a response, copy `data` into it, send it."""
        with _loaned_copy(self.loan_response, data) as resp:
            resp.send()


# ---- ports ---------------------------------------------------------------------------

class _Port(_payload.PortBase):
    """Common part of the four port kinds: lifetime, lock, chunk tracking.

    The C base (shoal._payload.PortBase) holds the C handle (``_handle``), the port's
    recursive lock (``_lock``, a PortLock), the chunk objects that own chunks of the
    port (``_owned_chunks()``), the count of deferred releases (``_deferred``) and the
    hot paths bound below (loan, try_take)."""

    _kind_name = "port"
    _kind = 0          # PortKind value, for the C hot paths
    _destroy = None  # backend function name

    def __init__(self, runtime, name, handle, full_policy=None):
        self._rt = runtime
        self._name = name
        self._handle = handle
        self._pid = os.getpid()
        self._closing = None  # the C port, closed in Python, destroyed with the last of those
        self._async_hub = None  # the _AsyncHub whose waitset the port is attached to
        self._setup_port(self._kind, self._chunk_cls, Loan, full_policy == FullPolicy.WAIT)
        runtime._ports.add(self)

    def _describe(self):
        return "%s %r" % (self._kind_name, self._name)

    def _same_process(self):
        return self._pid == os.getpid()

    def _h(self):
        h = self._handle
        if h is None:
            raise ClosedError("%s is closed" % self._describe())
        return h

    @property
    def name(self):
        """Topic or service name."""
        return self._name

    @property
    def runtime(self):
        return self._rt

    @property
    def closed(self):
        return self._handle is None

    def close(self):
        """Release every chunk this port's objects still own, then destroy the port.

        While views or arrays of released chunks' payloads live, the C port (and the
        runtime's mapping) stays until the last of them is dropped; the port is closed
        for every use all the same."""
        with self._lock:
            if self._handle is None:
                return
            if not self._same_process():  # inherited through fork: not ours to destroy
                self._handle = None
                return
            for chunk in self._owned_chunks():
                chunk._end()
            if self._async_hub is not None:
                self._async_hub.forget(self, ClosedError("%s was closed while awaited"
                                                         % self._describe()))
            handle, self._handle = self._handle, None
            if self._deferred:
                self._closing = handle
                self._rt._pending_ports.add(self)
                return
            self._wait_sleepers()
            getattr(backend, self._destroy)(handle)
        self._rt._ports.discard(self)

    def _wait_sleepers(self):
        """Wait until no thread sleeps in a wait on the C port (they see the port closed
        within one WAIT_SLICE): its destroy must not overlap their wait_ready."""
        while self._sleepers:
            time.sleep(0.001)

    # -- deferred releases (see ChunkBase in _payload.c)
    def _end_deferred(self, buf):
        """The last export of a released chunk's payload was dropped (called by its
        exporter `buf`): release the C chunk, and destroy the port if it was closed
        meanwhile."""
        if _exiting or not self._same_process():
            return
        with self._lock:
            buf._release_deferred()
            self._deferred -= 1
            if self._deferred or self._closing is None:
                return
            closing, self._closing = self._closing, None
            self._wait_sleepers()
            getattr(backend, self._destroy)(closing)
        self._rt._port_destroyed(self)

    @property
    def deferred_releases(self):
        """Chunks of this port released by their objects whose C release waits for a
        payload view or array that outlived them (they still count as held)."""
        return self._deferred

    def __enter__(self):
        self._h()
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def __del__(self):
        try:
            if getattr(self, "_handle", None) is not None:
                self.close()
        except Exception:
            pass

    def __repr__(self):
        return "<shoal.%s %r%s>" % (type(self).__name__, self._name,
                                    " closed" if self._handle is None else "")

    # -- shared implementations
    _chunk_cls = None   # class of the chunks taken

    def _loan_slow(self, size):
        # loan() with a size that is not a plain int in range: checked here
        return self.loan(_size_arg(size))

    def _fail(self, rc, what, size):
        """Raise the error of a failed hot path `what` of the C base (right after it)."""
        if what == "loan":
            _raise(rc, "%s: loan of %d bytes" % (self._describe(), size), self)
        elif what == "loan_response":
            _raise(rc, "%s: loan of a %d-byte response" % (self._describe(), size), self)
        elif what == "take":
            _raise(rc, "%s: take" % self._describe(), self)
        elif what == "send":
            _raise(rc, "%s: %s" % (self._describe(), self._send_what))
        elif what == "resize":
            _raise(rc, "resizing a loan of %s to %d bytes" % (self._describe(), size))
        else:
            _raise(rc, "releasing a chunk of %s" % self._describe())

    _send_what = "send"

    def _sleep(self, deadline, what):
        """Sleep until the port has data, `deadline` (time.monotonic(), None: no bound)
        or a signal, at most WAIT_SLICE, WITHOUT the port's lock: the C readiness wait
        may overlap other threads' calls on the port. False once the deadline passed."""
        if deadline is None:
            step = WAIT_SLICE
        else:
            step = min(WAIT_SLICE, deadline - time.monotonic())
            if step <= 0:
                return False
        rc = self._wait_ready(_timeout_ns(step))   # counted in _sleepers while asleep
        if rc != _OK and rc != _ERR_TIMEOUT:
            _raise(rc, "%s: %s" % (self._describe(), what), self)
        return True

    # -- take(timeout) is C (PortBase); these are its Python ends
    def _timeout_ns_of(self, timeout):
        """take()'s timeout when it is not a plain number in range: checked here."""
        return _timeout_ns(_seconds(timeout))

    def _take_timed_out(self, timeout):
        """take() found nothing within `timeout` (as the caller gave it): raise Timeout."""
        timeout = _seconds(timeout)
        raise _timeout("%s: take" % self._describe(), timeout,
                       "nothing arrived %s" % _within(timeout))

    async def _take_async(self, timeout):
        """asyncio take: poll, then await the runtime's waitset for this event loop."""
        timeout = _seconds(timeout)
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while True:
            chunk = self.try_take()
            if chunk is not None:
                return chunk
            if deadline is not None and loop.time() >= deadline:
                raise _timeout("%s: take_async" % self._describe(), timeout,
                               "nothing arrived %s" % _within(timeout))
            await _AsyncHub.of(self._rt, loop).readable(self, deadline)


class Publisher(_Port):
    """Publishes samples on a topic. ``loan(size)`` for zero-copy, ``publish(data)`` to copy."""

    _kind_name = "publisher"
    _destroy = "publisher_destroy"

    _kind = 1
    loan = _payload.publisher_loan

    _send_what = "publish"

    def publish(self, data):
        """Copying convenience: loan len(data) bytes, copy `data`, publish."""
        with _loaned_copy(self.loan, data) as loan:
            loan.send()

    @property
    def subscriber_count(self):
        """Subscribers currently matched."""
        with self._lock:
            return backend.publisher_subscriber_count(self._h())


class Subscriber(_Port):
    """Receives the samples of a topic."""

    _kind_name = "subscriber"
    _destroy = "subscriber_destroy"

    take = _payload.subscriber_take

    _kind = 2
    _chunk_cls = Sample
    try_take = _payload.subscriber_try_take


    async def take_async(self, timeout=None):
        """asyncio: await the next sample (up to `timeout` seconds, None: no bound).
        Every port of an event loop is awaited through one waitset of the runtime."""
        return await self._take_async(timeout)

    def __aiter__(self):
        """``async for sample in subscriber:`` yields the samples as they arrive.

        Take and release pair by construction: each sample is released when the loop
        asks for the next one, or when the loop ends (``break``, an exception, or the
        iterator being dropped). Use it inside its iteration (copy with
        ``bytes(sample.payload)`` to keep data); releasing it earlier in the body, or a
        ``with sample:`` block, is fine."""
        return _SampleIterator(self)


class Client(_Port):
    """Sends requests to the servers of a service and receives their responses."""

    _kind_name = "client"
    _destroy = "client_destroy"
    _stale = 0

    _kind = 3
    loan = _payload.client_loan


    take = _payload.client_take

    _take_fn = staticmethod(_with_view("client_take"))   # call(): rc of a poll needed
    _chunk_cls = Response
    try_take = _payload.client_try_take

    async def take_async(self, timeout=None):
        """asyncio: await the next response (see Subscriber.take_async)."""
        return await self._take_async(timeout)

    def _call_loan(self, loan, timeout):
        """Send `loan`, then take responses until the one carrying its sequence id
        arrives; older ones met on the way are released and counted in stale_responses.
        Sleeps without the port's lock, in slices cut short by signals (Ctrl-C)."""
        timeout = _seconds(timeout)
        deadline = None if timeout is None else time.monotonic() + timeout
        seq = loan.send()
        while True:
            with self._lock:
                h = self._h()
                resp = self._poll_response(h, seq)
            if resp is not None:
                return resp
            if not self._sleep(deadline, "call"):
                raise _timeout("%s: call" % self._describe(), timeout,
                               "no response to request %d %s" % (seq, _within(timeout)))

    def _poll_response(self, h, seq):
        """The response to request `seq` if it is queued (lock held), else None; stale
        responses before it are released and counted; a lost request raises."""
        while True:
            rc, chunk, address, n = self._take_fn(h, 0)
            if rc == _OK:
                if _chunk_sequence_id(chunk) == seq:
                    return Response(self, chunk, address, n)
                _chunk_release(chunk)   # a response to an earlier request
                self._stale += 1
                continue
            if rc == _ERR_TIMEOUT:
                return None
            if rc == _ERR_SERVER_GONE and _lost_request(backend.last_error()) not in (seq, None):
                continue   # an earlier request was lost, not this one
            _raise(rc, "%s: call" % self._describe(), self)

    async def call_async(self, data, timeout=None):
        """asyncio call(): send `data` as a request and await the response carrying its
        sequence id (up to `timeout` seconds, None: no bound); return its bytes. Stale
        responses met on the way are released and counted, as call() does. The send
        itself does not await (a WAIT-policy send may block up to its send_timeout)."""
        timeout = _seconds(timeout)
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        with _loaned_copy(self.loan, data) as req:
            seq = req.send()
        while True:
            with self._lock:
                resp = self._poll_response(self._h(), seq)
            if resp is not None:
                with resp:
                    return bytes(resp.payload)
            if deadline is not None and loop.time() >= deadline:
                raise _timeout("%s: call_async" % self._describe(), timeout,
                               "no response to request %d %s" % (seq, _within(timeout)))
            await _AsyncHub.of(self._rt, loop).readable(self, deadline)

    @property
    def stale_responses(self):
        """Responses to earlier requests that call() met and released on this port."""
        return self._stale

    def call(self, data, timeout=None):
        """Copying convenience: send `data` as a request, wait up to `timeout` seconds
        for its response and return the response's bytes. Responses to older requests
        met on the way are released (and counted as stale)."""
        timeout = _seconds(timeout)
        with _loaned_copy(self.loan, data) as req:
            with req.call(timeout) as resp:
                return bytes(resp.payload)

    @property
    def server_count(self):
        """Servers currently offering the service."""
        with self._lock:
            return backend.client_server_count(self._h())


class Server(_Port):
    """Takes the requests of a service and answers them."""

    _kind_name = "server"
    _destroy = "server_destroy"

    take = _payload.server_take

    _kind = 4
    _chunk_cls = Request
    try_take = _payload.server_try_take

    async def take_async(self, timeout=None):
        """asyncio: await the next request (see Subscriber.take_async)."""
        return await self._take_async(timeout)

    _send_what = "send response"


class _SampleIterator:
    """``async for`` over a subscriber: releases each sample before taking the next,
    and the last one when the loop ends (or this iterator is dropped)."""

    __slots__ = ("_sub", "_current")

    def __init__(self, sub):
        self._sub = sub
        self._current = None

    def __aiter__(self):
        return self

    def _drop(self):
        sample, self._current = self._current, None
        if sample is not None and not sample.released:
            sample.release()

    async def __anext__(self):
        self._drop()
        if self._sub._handle is None:
            raise StopAsyncIteration
        try:
            sample = await self._sub.take_async()
        except ClosedError:
            raise StopAsyncIteration from None
        self._current = sample
        return sample

    def __del__(self):
        try:
            self._drop()
        except Exception:  # never raise from a finalizer
            pass


class _AsyncHub:
    """The asyncio side of one runtime and event loop: one WaitSet, its descriptor
    registered once with ``loop.add_reader``, and the futures of the coroutines that
    await a port. A port is attached while awaited (and until it is seen ready with
    nobody waiting); no thread and no waitset per port."""

    def __init__(self, runtime, loop):
        try:
            self._ws = WaitSet(runtime)
        except Error as e:
            raise type(e)("asyncio: the runtime's one waitset for this event loop could not "
                          "be created: %s" % e, code=e.code, name=e.name,
                          detail=e.detail) from None
        self._loop = loop
        self._runtime = runtime
        self._waiters = {}   # port -> [future, ...]
        self._fd = self._ws.fileno()
        self._closed = False
        loop.add_reader(self._fd, self._on_readable)

    @classmethod
    def of(cls, runtime, loop):
        hubs = runtime._async_hubs
        hub = hubs.get(loop)
        if hub is None:
            with runtime._lock:
                for old in [lp for lp in hubs if lp.is_closed()]:
                    hubs.pop(old).close(None)   # waitsets of event loops that ended
                runtime._h()
                hub = hubs.get(loop)
                if hub is None:
                    hub = hubs[loop] = cls(runtime, loop)
        return hub

    def readable(self, port, deadline):
        """A future done when `port` may have data, or at `deadline` (loop.time());
        its exception when the daemon died or the port/runtime was closed."""
        if self._closed:
            raise ClosedError("runtime %r is closed" % self._runtime._name)
        if port._async_hub is not self:
            if port._async_hub is not None:
                raise RuntimeError("%s is awaited in another event loop; one port is awaited "
                                   "from one event loop at a time" % port._describe())
            try:
                self._ws.attach(port)
            except Error as e:
                if e.code == 1 and "already attached" in str(e):
                    raise type(e)("%s is attached to a WaitSet of yours; detach it before "
                                  "awaiting it with asyncio" % port._describe(),
                                  code=e.code, name=e.name, detail=e.detail) from None
                raise
            port._async_hub = self
        fut = self._loop.create_future()
        self._waiters.setdefault(port, []).append(fut)
        if deadline is not None:
            timer = self._loop.call_at(deadline, _set_none, fut)
            fut.add_done_callback(lambda f: timer.cancel())
        return fut

    def _on_readable(self):
        try:
            os.read(self._fd, 8)   # quiet until the C library signals again
        except (BlockingIOError, InterruptedError):
            pass
        ws = self._ws
        handle = ws._handle
        if handle is None:
            return
        rc, tags = backend.waitset_wait(handle, max(1, len(ws._ports)), 0)
        if rc == _ERR_TIMEOUT:
            return
        if rc != _OK:   # the daemon died: every awaiting coroutine learns it
            self._fail_all(_exception(rc, "asyncio wait"))
            return
        for tag in tags:
            port = ws._ports.get(tag)
            if port is None:
                continue
            futs = self._waiters.pop(port, None)
            woken = False
            for fut in futs or ():
                if not fut.done():
                    fut.set_result(None)
                    woken = True
            if not woken:   # ready and nobody waits: stop listening to it
                self._detach(port)

    def _detach(self, port):
        if port._async_hub is self:
            port._async_hub = None
            try:
                self._ws.detach(port)
            except (Error, ValueError):
                pass

    def forget(self, port, error):
        """The port closes (maybe on another thread): detach it, fail its waiters."""
        self._detach(port)
        futs = self._waiters.pop(port, ())
        if futs:
            self._call(_fail, futs, error)

    def _call(self, fn, *args):
        """fn(*args) on the loop's thread (futures are not thread-safe)."""
        try:
            on_loop = asyncio.get_running_loop() is self._loop
        except RuntimeError:
            on_loop = False
        if on_loop or self._loop.is_closed():
            fn(*args)
        else:
            self._loop.call_soon_threadsafe(fn, *args)

    def _fail_all(self, error):
        waiters, self._waiters = self._waiters, {}
        for futs in waiters.values():
            self._call(_fail, futs, error)

    def close(self, error):
        """Stop listening and close the waitset (the runtime closes, or the loop ended)."""
        if self._closed:
            return
        self._closed = True
        if not self._loop.is_closed():
            try:
                self._loop.remove_reader(self._fd)
            except Exception:  # another thread's loop: its selector drops a closed fd
                pass
        if error is not None:
            self._fail_all(error)
        for port in list(self._ws._ports.values()):
            if port._async_hub is self:
                port._async_hub = None
        self._ws.close()


def _fail(futs, error):
    for fut in futs:
        if not fut.done():
            fut.set_exception(error)


def _set_none(fut):
    if not fut.done():
        fut.set_result(None)


# ---- waitset -------------------------------------------------------------------------

class WaitSet:
    """Waits on several receiving ports (subscribers, servers, clients) at once.

    ``attach(port)``; ``wait(timeout)`` returns the ports that have data;
    ``fileno()`` is a descriptor that polls readable while any attached port has
    data (for select/epoll/asyncio).
    """

    def __init__(self, runtime):
        self._rt = runtime
        self._pid = os.getpid()
        self._lock = threading.RLock()
        rc, ws = backend.waitset_create(runtime._h())
        _check(rc, "creating a waitset")
        self._handle = ws
        self._ports = {}   # tag -> port
        self._tags = {}    # port -> tag
        self._next_tag = 1
        self._sleepers = set()  # tokens of threads in a C wait (see close)
        runtime._waitsets.add(self)

    def _h(self):
        if self._handle is None:
            raise ClosedError("waitset is closed")
        return self._handle

    def attach(self, port):
        """Attach a Subscriber, Server or Client; returns its tag."""
        fn = {Subscriber: backend.waitset_attach_subscriber, Server: backend.waitset_attach_server,
              Client: backend.waitset_attach_client}.get(type(port))
        if fn is None:
            raise TypeError("only subscribers, servers and clients can be attached, not %r" % port)
        with self._lock:
            tag = self._next_tag
            with port._lock:
                _check(fn(self._h(), port._h(), tag), "attaching %s to a waitset" % port._describe())
            self._next_tag += 1
            self._ports[tag] = port
            self._tags[port] = tag
            return tag

    def detach(self, port):
        with self._lock:
            tag = self._tags.get(port)
            if tag is not None:
                _check(backend.waitset_detach(self._h(), tag),
                       "detaching %s from a waitset" % port._describe())
                del self._ports[tag]
                del self._tags[port]
                return
        raise ValueError("%s is not attached to this waitset" % port._describe())

    def wait(self, timeout=None):
        """Wait up to `timeout` seconds (None: no bound) until an attached port has data;
        return the list of ready ports. Raises shoal.Timeout."""
        timeout = _seconds(timeout)
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            step = WAIT_SLICE if deadline is None else min(WAIT_SLICE, deadline - time.monotonic())
            # no lock while asleep: attach/detach may overlap a wait (shoal.h); close()
            # waits for the sleepers before destroying the waitset
            token = object()
            try:
                with self._lock:
                    h = self._h()
                    self._sleepers.add(token)
                rc, tags = backend.waitset_wait(h, max(1, len(self._ports)), _timeout_ns(step))
            finally:
                self._sleepers.discard(token)
            if rc == _OK:
                ports = self._ports
                return [ports[t] for t in tags if t in ports]
            if rc != _ERR_TIMEOUT:
                _raise(rc, "waitset: wait")
            if deadline is not None and time.monotonic() >= deadline:
                raise _timeout("waitset: wait", timeout,
                               "no attached port had data %s" % _within(timeout))

    def _drain(self):
        """Reset the readiness of fileno() after it polled readable.

        The C library signals the descriptor (an eventfd) but does not reset it when
        the data is taken; read it (non-blocking) so that an event loop does not spin.
        While data is still queued the library signals it again.
        """
        with self._lock:
            if self._handle is None:
                return
            rc, fd = backend.waitset_fd(self._handle)
            if rc == _OK:
                try:
                    os.read(fd, 8)
                except (BlockingIOError, InterruptedError):
                    pass

    def fileno(self):
        """Descriptor that polls readable while an attached port has data (owned here)."""
        with self._lock:
            rc, fd = backend.waitset_fd(self._h())
            _check(rc, "waitset: fd")
            return fd

    def close(self):
        with self._lock:
            if self._handle is None:
                return
            handle, self._handle = self._handle, None
            self._ports.clear()
            self._tags.clear()
            if self._pid == os.getpid():
                while self._sleepers:   # another thread's wait ends within WAIT_SLICE
                    time.sleep(0.001)
                backend.waitset_destroy(handle)
        self._rt._waitsets.discard(self)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def __del__(self):
        try:
            if getattr(self, "_handle", None) is not None:
                self.close()
        except Exception:
            pass


# ---- runtime -------------------------------------------------------------------------

def _default_name():
    base = os.path.basename(sys.argv[0] if sys.argv and sys.argv[0] else "") or "python"
    base = "".join(c if c.isprintable() and not c.isspace() else "_" for c in base)
    return (base or "python")[:63]


class Runtime:
    """This process's registration with the daemon of a domain.

    ``Runtime(name, domain=None, runtime_dir=None, connect_timeout=5.0)``: domain and
    runtime_dir default to $SHOAL_DOMAIN / $SHOAL_RUNTIME_DIR and then to the C
    library's defaults; connect_timeout (seconds) is how long to retry while the
    daemon starts. Closing the runtime closes its ports and releases their chunks.
    """

    def __init__(self, name=None, domain=None, runtime_dir=None, connect_timeout=5.0):
        self._handle = None
        self._pid = os.getpid()
        self._ports = weakref.WeakSet()
        self._waitsets = weakref.WeakSet()
        # Closed ports whose C port waits for payload exports of released chunks (see
        # _Port.close), and the C runtime, closed in Python, destroyed after the last one.
        self._pending_ports = set()
        self._closing = None
        self._async_hubs = {}  # event loop -> _AsyncHub (one waitset each)
        self._lock = threading.RLock()
        self._name = _default_name() if name is None else _name(name, "process name")
        domain = None if domain is None else _name(domain, "domain")
        runtime_dir = _path(runtime_dir, "runtime_dir")
        rc, rt = backend.runtime_create(self._name, domain, runtime_dir,
                                        _opt_ns(connect_timeout, "connect_timeout"))
        if rc != _OK:
            _raise(rc, "connecting %s to domain %s" % (
                _shown(self._name), _shown(domain or os.environ.get("SHOAL_DOMAIN")
                                            or "default")))
        self._handle = rt
        self._runtime_dir = runtime_dir
        _live_runtimes.add(self)

    def _h(self):
        if self._handle is None:
            raise ClosedError("runtime %r is closed" % self._name)
        return self._handle

    @property
    def name(self):
        return self._name

    @property
    def domain(self):
        return backend.runtime_domain(self._h())

    @property
    def closed(self):
        return self._handle is None

    # -- ports
    def publisher(self, topic, history=None, full_policy=None, send_timeout=None):
        """Create a Publisher. history: samples kept for late subscribers; full_policy:
        FullPolicy or "drop_oldest"/"reject"/"wait"; send_timeout: seconds for WAIT."""
        policy = _policy(full_policy)
        rc, h = backend.publisher_create(
            self._h(), _name(topic, "topic"), _opt_u32(history, "history"),
            policy, _opt_ns(send_timeout, "send_timeout"))
        _check(rc, "creating publisher %s" % _shown(topic))
        return Publisher(self, topic, h, policy)

    def subscriber(self, topic, queue_capacity=None, history=None, ignore_own_process=False):
        """Create a Subscriber (queue_capacity 0/None: limits.queue_capacity).
        ignore_own_process: skip samples of this process's own publishers (bridges)."""
        rc, h = backend.subscriber_create(
            self._h(), _name(topic, "topic"), _opt_u32(queue_capacity, "queue_capacity"),
            _opt_u32(history, "history"), _opt_flag(ignore_own_process, "ignore_own_process"))
        _check(rc, "creating subscriber %s" % _shown(topic))
        return Subscriber(self, topic, h)

    def client(self, service, queue_capacity=None, full_policy=None, send_timeout=None,
               ignore_own_process=False):
        """Create a Client; full_policy applies to the server's request queue.
        ignore_own_process: never send to (nor count) this process's own servers."""
        policy = _policy(full_policy)
        rc, h = backend.client_create(
            self._h(), _name(service, "service"), _opt_u32(queue_capacity, "queue_capacity"),
            policy, _opt_ns(send_timeout, "send_timeout"),
            _opt_flag(ignore_own_process, "ignore_own_process"))
        _check(rc, "creating client %s" % _shown(service))
        return Client(self, service, h, policy)

    def server(self, service, queue_capacity=None, full_policy=None, send_timeout=None):
        """Create a Server; full_policy applies to the client's response queue."""
        policy = _policy(full_policy)
        rc, h = backend.server_create(
            self._h(), _name(service, "service"), _opt_u32(queue_capacity, "queue_capacity"),
            policy, _opt_ns(send_timeout, "send_timeout"))
        _check(rc, "creating server %s" % _shown(service))
        return Server(self, service, h, policy)

    def waitset(self):
        return WaitSet(self)

    # -- introspection
    def pools(self):
        """PoolInfo for every pool of the domain."""
        h = self._h()
        out = []
        for i in range(backend.pool_count(h)):
            rc, info = backend.pool_info(h, i)
            _check(rc, "pool info #%d" % i)
            out.append(PoolInfo(i, *info))
        return out

    def ports(self, pid=None, kind=None):
        """PortInfo for every live port of the domain (optionally of one pid / kind)."""
        h = self._h()
        out = []
        for slot in range(backend.port_slots(h)):
            rc, info = backend.port_info(h, slot)
            if rc == _ERR_NOT_FOUND:
                continue
            _check(rc, "port info #%d" % slot)
            p = PortInfo(slot, PortKind(info[0]), *info[1:])
            if (pid is None or p.pid == pid) and (kind is None or p.kind == kind):
                out.append(p)
        return out

    # -- lifetime
    def close(self):
        """Close every port and waitset of this runtime, then unregister."""
        with self._lock:
            if self._handle is None:
                return
            if self._pid != os.getpid():  # inherited through fork
                self._handle = None
                return
            hubs, self._async_hubs = self._async_hubs, {}
            for hub in hubs.values():
                hub.close(ClosedError("runtime %r was closed while awaited" % self._name))
            for ws in list(self._waitsets):
                ws.close()
            for port in list(self._ports):
                port.close()
            handle, self._handle = self._handle, None
            _live_runtimes.discard(self)
            if self._pending_ports:
                # Payload views/arrays of released chunks still live: the mapping must
                # stay until the last of them is dropped (shoal_runtime_destroy unmaps it
                # and frees every port handle), see _port_destroyed.
                self._closing = handle
                return
            backend.runtime_destroy(handle)

    def _port_destroyed(self, port):
        """A closed port's last deferred release ran and its C port is gone (called
        without the port's lock: the order of locks is runtime, then port)."""
        with self._lock:
            self._pending_ports.discard(port)
            self._ports.discard(port)
            if self._pending_ports or self._closing is None:
                return
            handle, self._closing = self._closing, None
            backend.runtime_destroy(handle)

    def deferred_releases(self):
        """{port description: count} of chunks released by their objects whose C release
        waits for a payload view or array that outlived them."""
        with self._lock:
            ports = set(self._ports) | self._pending_ports
        return {p._describe(): p._deferred for p in ports if p._deferred}

    def __enter__(self):
        self._h()
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def __del__(self):
        try:
            if getattr(self, "_handle", None) is not None:
                self.close()
        except Exception:
            pass

    def __repr__(self):
        return "<shoal.Runtime %r%s>" % (self._name, " closed" if self._handle is None else "")
