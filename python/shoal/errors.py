"""Exceptions raised by shoal.

Every failure of a C call becomes an instance of a subclass of :class:`Error`,
chosen by its result code. The message is ``"<CODE NAME>: <detail>"`` where the
detail is the C library's per-thread message (which limit, which pool, which
config key, who holds the slots).
"""

__all__ = [
    "Error", "InvalidArgumentError", "Timeout", "PoolExhaustedError", "ChunkTooLargeError",
    "LimitError", "PortLimitError", "HeldLimitError", "ProcessLimitError", "ServiceLimitError",
    "QueueFullError", "DaemonUnavailableError", "VersionMismatchError", "AccessDeniedError",
    "NoServerError", "ServerGoneError", "ClientGoneError", "CorruptError", "NoMemoryError",
    "SystemCallError", "WrongPortError", "AlreadyExistsError", "NotFoundError",
    "BusyError", "ReleasedError", "ClosedError", "DaemonError", "PayloadExportedError",
]


class Error(Exception):
    """Base class of every shoal error.

    Attributes: ``code`` (the ``shoal_result_t`` value, or None for errors of the
    Python layer), ``name`` (e.g. ``"SHOAL_ERR_TIMEOUT"``) and ``detail`` (the C
    library's detail message, possibly empty).
    """

    code = None

    def __init__(self, message, code=None, name=None, detail=""):
        super().__init__(message)
        if code is not None:
            self.code = code
        self.name = name
        self.detail = detail


class InvalidArgumentError(Error, ValueError):
    """A bad name, size, handle or option (SHOAL_ERR_INVALID_ARGUMENT)."""
    code = 1


class Timeout(Error, TimeoutError):
    """Nothing arrived within the timeout (SHOAL_ERR_TIMEOUT). Also a builtin TimeoutError."""
    code = 2


class PoolExhaustedError(Error):
    """The pool that fits the size has no free chunk (SHOAL_ERR_POOL_EXHAUSTED)."""
    code = 3


class ChunkTooLargeError(Error, ValueError):
    """Larger than every configured pool (SHOAL_ERR_CHUNK_TOO_LARGE)."""
    code = 4


class LimitError(Error):
    """Base of the errors that name a configured limit (``limits.*`` in the config)."""


class PortLimitError(LimitError):
    """limits.publishers/subscribers/servers/clients reached (SHOAL_ERR_PORT_LIMIT)."""
    code = 5


class HeldLimitError(LimitError):
    """A port holds limits.chunks_per_port chunks (SHOAL_ERR_HELD_LIMIT)."""
    code = 6


class QueueFullError(Error):
    """The receiver's queue is full and the policy is REJECT or WAIT (SHOAL_ERR_QUEUE_FULL)."""
    code = 7


class DaemonUnavailableError(Error, ConnectionError):
    """No shoald for the domain, or it died (SHOAL_ERR_DAEMON_UNAVAILABLE)."""
    code = 8


class VersionMismatchError(Error):
    """The daemon and the library have different ABI versions (SHOAL_ERR_VERSION_MISMATCH)."""
    code = 9


class AccessDeniedError(Error, PermissionError):
    """Peer credentials refused (SHOAL_ERR_PERMISSION)."""
    code = 10


class NoServerError(Error):
    """No server offers the service (SHOAL_ERR_NO_SERVER)."""
    code = 11


class ServerGoneError(Error):
    """The server holding the request died (SHOAL_ERR_SERVER_GONE)."""
    code = 12


class ClientGoneError(Error):
    """The requesting client no longer exists (SHOAL_ERR_CLIENT_GONE)."""
    code = 13


class CorruptError(Error):
    """Shared memory failed a bounds check (SHOAL_ERR_CORRUPT)."""
    code = 14


class NoMemoryError(Error, MemoryError):
    """A local allocation failed (SHOAL_ERR_NO_MEMORY)."""
    code = 15


class SystemCallError(Error, OSError):
    """A system call failed; the detail names it and errno (SHOAL_ERR_SYSTEM)."""
    code = 16


class WrongPortError(Error, ValueError):
    """A chunk used with a port that does not own it (SHOAL_ERR_WRONG_PORT)."""
    code = 18


class ProcessLimitError(LimitError):
    """limits.processes reached (SHOAL_ERR_PROCESS_LIMIT)."""
    code = 19


class ServiceLimitError(LimitError):
    """limits.services reached (SHOAL_ERR_SERVICE_LIMIT)."""
    code = 20


class AlreadyExistsError(Error):
    """E.g. a daemon already runs on the domain (SHOAL_ERR_ALREADY_EXISTS)."""
    code = 21


class NotFoundError(Error, LookupError):
    """No such entry: a free or out-of-range slot in an info call, an unknown waitset
    tag (SHOAL_ERR_NOT_FOUND)."""
    code = 22


class BusyError(Error):
    """A sliced send stopped waiting for queue space, the chunk still the caller's
    (SHOAL_ERR_BUSY); the Python layer resumes such sends itself."""
    code = 23


# ---- errors of the Python layer ---------------------------------------------------

class ReleasedError(Error, ValueError):
    """The chunk was released, sent or published; its payload may not be touched.

    Raised by every access to a chunk object after its release. A memoryview
    obtained earlier from ``chunk.payload`` is released too; touching it raises
    Python's own ``ValueError`` (of which ReleasedError is also a subclass).
    """


class ClosedError(Error, ValueError):
    """The runtime, port or waitset was closed."""


class PayloadExportedError(Error, BufferError):
    """A send, publish or resize was refused because something made from the payload
    still lives: a slice of ``chunk.payload`` kept in a variable, ``numpy.frombuffer(
    chunk.payload)``, ``chunk.array()``. It could still change what the receiver reads,
    so nothing was sent and the chunk is still owned: drop those objects and send again,
    or release the chunk (its release then waits until they are dropped)."""


class DaemonError(Error):
    """shoald could not be started or stopped (bad config, domain already served, ...)."""


_BY_CODE = {cls.code: cls for cls in list(globals().values())
            if isinstance(cls, type) and issubclass(cls, Error) and cls.code is not None}


def error_class(code):
    """The exception class for a shoal_result_t code (Error for unknown codes)."""
    return _BY_CODE.get(code, Error)
