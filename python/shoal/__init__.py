"""shoal: zero-copy inter-process communication over shared memory.

    import shoal
    with shoal.Daemon(domain="demo", pools={64: 1024, "1M": 8}) as daemon:
        with shoal.Runtime("app", domain="demo") as rt:
            pub = rt.publisher("radar/front")
            sub = rt.subscriber("radar/front")
            with pub.loan(100) as sample:
                sample.payload[:] = b"x" * 100
                sample.send()
            with sub.take(timeout=1.0) as sample:
                print(bytes(sample.payload))

Loans and takes are context managers: the chunk is released at the end of the
block unless sent; its ``payload`` memoryview dies with it. Errors derive from
shoal.Error (shoal.Timeout is also a TimeoutError). See README and BACKEND.md.
"""

# A source tree run with PYTHONPATH=<build>/swig/python:python (ctest's swig_python)
# finds the compiled shoal._payload in <build>/swig/python/shoal/.
__path__ = __import__("pkgutil").extend_path(__path__, __name__)

from .errors import *  # noqa: E402,F401,F403
from .errors import __all__ as _errors_all  # noqa: E402
from ._api import (Chunk, Client, FullPolicy, Loan, PoolInfo, PortInfo, PortKind, Publisher,
                   Request, Response, Runtime, Sample, Server, Subscriber, WaitSet,
                   abi_version, backend_name, version)
from ._daemon import Daemon, find_shoald  # noqa: E402

__version__ = version()  # of the C library compiled in: capi/include/shoal.h

__all__ = ["Runtime", "Publisher", "Subscriber", "Client", "Server", "WaitSet", "Chunk",
           "Loan", "Sample", "Request", "Response", "FullPolicy", "PortKind", "PoolInfo",
           "PortInfo", "Daemon", "find_shoald", "version", "abi_version", "backend_name",
           "__version__"] + list(_errors_all)
