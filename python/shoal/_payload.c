/*
 * shoal._payload: the chunk lifecycle of the Python layer, in C.
 *
 * ChunkBase   base of shoal.Chunk (Loan, Sample, Request, Response). It owns one C chunk
 *             until exactly one of send/publish/release; `with`, release, send,
 *             loan_response, payload, size and sequence_id are single C calls.
 * Payload     the one buffer exporter of a chunk's payload, made on its first export: it
 *             counts its exports itself (bf_getbuffer / bf_releasebuffer), read-only for
 *             taken chunks, and keeps the port (so the runtime and the mapping) alive.
 *             `chunk.payload` is one "primary" memoryview of it. Slices of a memoryview
 *             share its managed buffer and do not call back into the exporter, so what
 *             outlives the primary view is counted from the view's own counters as well
 *             (other memoryviews on its managed buffer, buffers exported by it, and exports
 *             made from the Payload directly: numpy.frombuffer in chunk.array()).
 *               send      refused (PayloadExportedError) while such an export lives,
 *                         before anything is sent;
 *               release   the primary view is released; with live exports the C release is
 *                         deferred until the last one is released (the port's
 *                         _end_deferred(payload) runs then, see _api.py).
 *             A separate object, so that a chunk object can die (and be reported by the
 *             garbage collector) while views of its payload live.
 * PortBase    base of the Python ports: the C port handle, a PortLock, the chunk objects
 *             that own chunks of the port, the non-blocking hot paths (loan, try_take)
 *             and the readiness wait (_wait_ready: no port lock, no GIL; close() waits
 *             for its sleepers before destroying the C port).
 * PortLock    the per-port lock (the C rule: one thread at a time per port), recursive.
 *             Its state is only changed with the GIL held, so taking a free lock is two
 *             plain stores; a contended acquire sleeps on a condition variable without
 *             the GIL, in slices, so that Ctrl-C is handled.
 *
 * The C library is reached through the function pointers the backend hands to bind()
 * (cffi: ffi.addressof(lib, ...); SWIG: shoal_swig_function_table()), so this module
 * depends on neither cffi nor SWIG nor a second copy of the library. Calls that cannot
 * wait run with the GIL held (a GIL round trip costs more than they do); the sliced
 * sends of a port with the WAIT policy (signals checked between slices, so Ctrl-C
 * interrupts them) and _wait_ready() let the GIL go.
 *
 * The leak check of the pytest plugin (shoal._api._chunk_hook) is a C pointer here:
 * when set, every chunk object made is reported to it ("new"); unset, it costs one test.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <time.h>

#include "shoal.h"

#ifdef Py_GIL_DISABLED
#error "shoal._payload relies on the GIL to guard its lock state and chunk lists"
#endif

/* ---- the C library, through the backend's function pointers ----------------------- */

static struct {
    __typeof__(&shoal_publisher_loan) publisher_loan;
    __typeof__(&shoal_publisher_publish) publisher_publish;
    __typeof__(&shoal_subscriber_take) subscriber_take;
    __typeof__(&shoal_client_loan) client_loan;
    __typeof__(&shoal_client_send) client_send;
    __typeof__(&shoal_client_take) client_take;
    __typeof__(&shoal_server_take) server_take;
    __typeof__(&shoal_server_loan_response) server_loan_response;
    __typeof__(&shoal_server_send) server_send;
    __typeof__(&shoal_chunk_payload) chunk_payload;
    __typeof__(&shoal_chunk_size) chunk_size;
    __typeof__(&shoal_chunk_set_size) chunk_set_size;
    __typeof__(&shoal_chunk_sequence_id) chunk_sequence_id;
    __typeof__(&shoal_chunk_release) chunk_release;
    __typeof__(&shoal_publisher_publish_slice) publisher_publish_slice;
    __typeof__(&shoal_client_send_slice) client_send_slice;
    __typeof__(&shoal_server_send_slice) server_send_slice;
    __typeof__(&shoal_subscriber_wait_ready) subscriber_wait_ready;
    __typeof__(&shoal_client_wait_ready) client_wait_ready;
    __typeof__(&shoal_server_wait_ready) server_wait_ready;
} F;
static int bound;
static PyObject *address_of; /* backend handle -> int address (slow paths only) */
static PyObject *on_finalize; /* called with a chunk the garbage collector found owned */
/* The pytest plugin's leak check (shoal._api._chunk_hook): hook("new", chunk) for every
 * chunk object made; NULL when unset, so that other code pays one test of a pointer. */
static PyObject *chunk_hook;

enum { KIND_PUBLISHER = 1, KIND_SUBSCRIBER = 2, KIND_CLIENT = 3, KIND_SERVER = 4 };
enum { OWNED = 0, RELEASED = 1, SENT = 2 };

/* Interned names of the Python-level helpers called on rare paths. */
static PyObject *s_release, *s_h, *s_fail, *s_released_error, *s_exported_error,
    *s_end_deferred;

/* ---- PortLock ------------------------------------------------------------------------ */

typedef struct {
    PyObject_HEAD
    unsigned long owner; /* thread ident, 0 = free; read and written with the GIL held */
    unsigned long count;
    int waiters;         /* threads sleeping in lock_wait */
    unsigned gen;        /* bumped by each release that wakes waiters (under mu) */
    pthread_mutex_t mu;
    pthread_cond_t cv;
} PortLock;

static PyTypeObject PortLockType;

/* Ctrl-C is seen within one slice of a contended wait or a WAIT-policy send
 * (the layer's WAIT_SLICE). */
#define LOCK_SLICE_NS 50000000L
#define SEND_SLICE_NS 50000000LL

/* Waits (GIL released) until the lock was released or `deadline` (CLOCK_MONOTONIC ns,
 * -1: none) passed. -1 with an exception when a signal handler raised. */
static int lock_wait(PortLock *l, long long deadline)
{
    unsigned g = l->gen;
    struct timespec ts;
    long long now, until;
    l->waiters++;
    Py_BEGIN_ALLOW_THREADS
    clock_gettime(CLOCK_MONOTONIC, &ts);
    now = ts.tv_sec * 1000000000LL + ts.tv_nsec;
    until = now + LOCK_SLICE_NS;
    if (deadline >= 0 && deadline < until)
        until = deadline;
    ts.tv_sec = until / 1000000000LL;
    ts.tv_nsec = until % 1000000000LL;
    pthread_mutex_lock(&l->mu);
    while (l->gen == g && pthread_cond_timedwait(&l->cv, &l->mu, &ts) != ETIMEDOUT) {
    }
    pthread_mutex_unlock(&l->mu);
    Py_END_ALLOW_THREADS
    l->waiters--;
    return PyErr_CheckSignals();
}

static long long mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* 1 acquired, 0 not (timeout / non-blocking), -1 exception. timeout_ns < 0: no bound. */
static int lock_acquire(PortLock *l, long long timeout_ns)
{
    unsigned long me = PyThread_get_thread_ident();
    long long deadline = -1;
    if (l->owner == me) {
        l->count++;
        return 1;
    }
    if (l->owner != 0) {
        if (timeout_ns == 0)
            return 0;
        if (timeout_ns > 0)
            deadline = mono_ns() + timeout_ns;
        while (l->owner != 0) {
            if (deadline >= 0 && mono_ns() >= deadline)
                return 0;
            if (lock_wait(l, deadline) < 0)
                return -1;
        }
    }
    l->owner = me;
    l->count = 1;
    return 1;
}

/* The hot paths: the lock is nearly always free. */
static inline int lock_fast(PortLock *l)
{
    if (l->owner == 0) {
        l->owner = PyThread_get_thread_ident();
        l->count = 1;
        return 0;
    }
    return lock_acquire(l, -1) < 0 ? -1 : 0;
}

static void lock_wake(PortLock *l)
{
    pthread_mutex_lock(&l->mu);
    l->gen++;
    pthread_cond_broadcast(&l->cv);
    pthread_mutex_unlock(&l->mu);
}

static inline void lock_release(PortLock *l)
{
    if (--l->count == 0) {
        l->owner = 0;
        if (l->waiters)
            lock_wake(l);
    }
}

static PyObject *portlock_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    PortLock *l;
    pthread_condattr_t attr;
    if ((kwds && PyDict_GET_SIZE(kwds)) || PyTuple_GET_SIZE(args)) {
        PyErr_SetString(PyExc_TypeError, "PortLock() takes no arguments");
        return NULL;
    }
    l = (PortLock *)type->tp_alloc(type, 0);
    if (!l)
        return NULL;
    pthread_mutex_init(&l->mu, NULL);
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&l->cv, &attr);
    pthread_condattr_destroy(&attr);
    return (PyObject *)l;
}

static void portlock_dealloc(PortLock *l)
{
    pthread_cond_destroy(&l->cv);
    pthread_mutex_destroy(&l->mu);
    Py_TYPE(l)->tp_free((PyObject *)l);
}

static PyObject *portlock_acquire(PortLock *l, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"blocking", "timeout", NULL};
    int blocking = 1, r;
    double timeout = -1;
    long long ns;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|pd:acquire", kwlist, &blocking, &timeout))
        return NULL;
    if (!blocking && timeout != -1) {
        PyErr_SetString(PyExc_ValueError, "can't specify a timeout for a non-blocking call");
        return NULL;
    }
    if (timeout < 0 && timeout != -1) {
        PyErr_SetString(PyExc_ValueError, "timeout value must be a non-negative number");
        return NULL;
    }
    ns = !blocking ? 0 : timeout < 0 ? -1 : (long long)(timeout * 1e9);
    if (blocking && timeout == 0)
        ns = 0;
    r = lock_acquire(l, ns);
    if (r < 0)
        return NULL;
    return PyBool_FromLong(r);
}

static PyObject *portlock_enter(PortLock *l, PyObject *unused)
{
    (void)unused;
    if (lock_acquire(l, -1) < 0)
        return NULL;
    Py_RETURN_TRUE;
}

static PyObject *portlock_release(PortLock *l, PyObject *unused)
{
    (void)unused;
    if (l->owner != PyThread_get_thread_ident()) {
        PyErr_SetString(PyExc_RuntimeError, "cannot release un-acquired lock");
        return NULL;
    }
    lock_release(l);
    Py_RETURN_NONE;
}

static PyObject *portlock_exit(PortLock *l, PyObject *const *args, Py_ssize_t nargs)
{
    (void)args;
    (void)nargs;
    return portlock_release(l, NULL);
}

static PyObject *portlock_is_owned(PortLock *l, PyObject *unused)
{
    (void)unused;
    return PyBool_FromLong(l->owner == PyThread_get_thread_ident());
}

static PyObject *portlock_locked(PortLock *l, PyObject *unused)
{
    (void)unused;
    return PyBool_FromLong(l->owner != 0);
}

/* threading.Condition support, as RLock has it: release fully, then restore. */
static PyObject *portlock_release_save(PortLock *l, PyObject *unused)
{
    unsigned long count = l->count, owner = l->owner;
    (void)unused;
    if (owner != PyThread_get_thread_ident() || count == 0) {
        PyErr_SetString(PyExc_RuntimeError, "cannot release un-acquired lock");
        return NULL;
    }
    l->count = 1;
    lock_release(l);
    return Py_BuildValue("(kk)", count, owner);
}

static PyObject *portlock_acquire_restore(PortLock *l, PyObject *state)
{
    unsigned long count, owner;
    if (!PyArg_ParseTuple(state, "kk:_acquire_restore", &count, &owner))
        return NULL;
    if (lock_acquire(l, -1) < 0)
        return NULL;
    l->count = count;
    l->owner = owner;
    Py_RETURN_NONE;
}

static PyObject *portlock_at_fork_reinit(PortLock *l, PyObject *unused)
{
    (void)unused;
    l->owner = 0;
    l->count = 0;
    l->waiters = 0;
    pthread_mutex_init(&l->mu, NULL);
    Py_RETURN_NONE;
}

static PyMethodDef portlock_methods[] = {
    {"acquire", (PyCFunction)(void (*)(void))portlock_acquire, METH_VARARGS | METH_KEYWORDS,
     "acquire(blocking=True, timeout=-1) -> bool (recursive, like threading.RLock)"},
    {"release", (PyCFunction)portlock_release, METH_NOARGS, "release()"},
    {"__enter__", (PyCFunction)portlock_enter, METH_NOARGS, NULL},
    {"__exit__", (PyCFunction)(void (*)(void))portlock_exit, METH_FASTCALL, NULL},
    {"locked", (PyCFunction)portlock_locked, METH_NOARGS, "held by some thread"},
    {"_is_owned", (PyCFunction)portlock_is_owned, METH_NOARGS, NULL},
    {"_release_save", (PyCFunction)portlock_release_save, METH_NOARGS, NULL},
    {"_acquire_restore", (PyCFunction)portlock_acquire_restore, METH_O, NULL},
    {"_at_fork_reinit", (PyCFunction)portlock_at_fork_reinit, METH_NOARGS, NULL},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject PortLockType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "shoal._payload.PortLock",
    .tp_basicsize = sizeof(PortLock),
    .tp_dealloc = (destructor)portlock_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "The lock of one port: recursive, like threading.RLock (see the module doc).",
    .tp_methods = portlock_methods,
    .tp_new = portlock_new,
};

/* ---- PortBase ------------------------------------------------------------------------- */

typedef struct ChunkObject ChunkObject;

typedef struct {
    PyObject_HEAD
    void *raw;              /* the C port; NULL once closed */
    PyObject *handle;       /* the backend's handle object (None once closed) */
    PortLock *lock;
    int kind;               /* KIND_*; 0 until _setup_port() */
    int send_waits;         /* full_policy WAIT: a send may sleep, without the GIL */
    Py_ssize_t deferred;    /* released chunks whose C release waits for exports */
    Py_ssize_t sleepers;    /* threads in _wait_ready (no lock): close waits for them */
    PyTypeObject *take_cls; /* Sample / Request / Response */
    PyTypeObject *loan_cls; /* Loan */
    ChunkObject *owned;     /* chunks owned by objects of this port (not counted refs) */
} PortBase;

static PyTypeObject PortBaseType;

/* The buffer exporter of one chunk's payload (made on the chunk's first export). It
 * is a separate object, so that a chunk object can die (and be reported by the garbage
 * collector) while views of its payload live; those keep the exporter, the exporter
 * keeps the port (and so the runtime and the mapping). */
typedef struct {
    PyObject_HEAD
    char *data;
    Py_ssize_t size;
    int readonly;
    int closed;              /* no new export */
    Py_ssize_t exports;      /* live Py_buffers handed out by payload_getbuffer */
    PortBase *port;          /* strong */
    shoal_chunk_t *deferred; /* released by its chunk object, C release waits for exports */
} Payload;

static PyTypeObject PayloadType;

struct ChunkObject {
    PyObject_HEAD
    PortBase *port;            /* strong: the port keeps the runtime and the mapping */
    shoal_chunk_t *handle;     /* owned C chunk; NULL once sent or released */
    char *data;
    Py_ssize_t size;
    int readonly;
    int how;                   /* OWNED, RELEASED, SENT */
    Payload *buf;              /* the exporter, made on the first export */
    PyObject *view;            /* the primary memoryview of buf, made on first .payload */
    ChunkObject *prev, *next;  /* in port->owned while owned */
    PyObject *weakreflist;
};

static PyTypeObject ChunkBaseType;

/* A zero-size payload still needs a non-NULL address for some consumers. */
static char empty_payload[1];

static int check_bound(void)
{
    if (!bound) {
        PyErr_SetString(PyExc_RuntimeError, "shoal._payload: bind() was not called");
        return -1;
    }
    return 0;
}

/* The port is closed: its _h() raises ClosedError. */
static PyObject *raise_closed(PortBase *port)
{
    PyObject *r = PyObject_CallMethodNoArgs((PyObject *)port, s_h);
    if (r) {
        Py_DECREF(r);
        PyErr_SetString(PyExc_RuntimeError, "shoal: port closed");
    }
    return NULL;
}

/* The error of result `rc` of operation `what` (raised by the port's _fail). */
static PyObject *raise_rc(PortBase *port, int rc, const char *what, unsigned long long size)
{
    PyObject *r = PyObject_CallMethod((PyObject *)port, "_fail", "isK", rc, what, size);
    if (r) {
        Py_DECREF(r);
        PyErr_Format(PyExc_RuntimeError, "shoal: %s failed with %d", what, rc);
    }
    return NULL;
}

static void owned_link(PortBase *port, ChunkObject *c)
{
    c->prev = NULL;
    c->next = port->owned;
    if (port->owned)
        port->owned->prev = c;
    port->owned = c;
}

static void owned_unlink(ChunkObject *c)
{
    PortBase *port = c->port;
    if (c->prev)
        c->prev->next = c->next;
    else if (port && port->owned == c)
        port->owned = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->prev = c->next = NULL;
}

/* A new chunk object of `cls` owning `h` (port lock held). Releases `h` on failure. */
static PyObject *chunk_make(PortBase *port, PyTypeObject *cls, shoal_chunk_t *h, int readonly)
{
    ChunkObject *c = (ChunkObject *)cls->tp_alloc(cls, 0);
    void *p;
    if (!c) {
        F.chunk_release(h);
        return NULL;
    }
    Py_INCREF(port);
    c->port = port;
    c->handle = h;
    p = F.chunk_payload(h);
    c->data = p ? (char *)p : empty_payload;
    c->size = p ? (Py_ssize_t)F.chunk_size(h) : 0;
    c->readonly = readonly;
    owned_link(port, c);
    return (PyObject *)c;
}

/* Tells the leak check's hook about a new chunk object (called without the port lock,
 * so that the hook may take locks of its own). A failing hook is reported, not raised:
 * the chunk is made and owned either way. */
static void report_new(PyObject *chunk)
{
    static PyObject *s_new;
    PyObject *hook = chunk_hook, *r;
    if (!s_new && !(s_new = PyUnicode_InternFromString("new"))) {
        PyErr_WriteUnraisable(NULL);
        return;
    }
    Py_INCREF(hook);
    r = PyObject_CallFunctionObjArgs(hook, s_new, chunk, NULL);
    if (!r)
        PyErr_WriteUnraisable(hook);
    Py_XDECREF(r);
    Py_DECREF(hook);
}

static inline PyObject *made(PyObject *chunk)
{
    if (chunk_hook && chunk && chunk != Py_None)
        report_new(chunk);
    return chunk;
}

static PyObject *portbase_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    PortBase *self;
    (void)args;
    (void)kwds;
    self = (PortBase *)type->tp_alloc(type, 0);
    if (!self)
        return NULL;
    self->lock = (PortLock *)PyObject_CallNoArgs((PyObject *)&PortLockType);
    if (!self->lock) {
        Py_DECREF(self);
        return NULL;
    }
    Py_INCREF(Py_None);
    self->handle = Py_None;
    return (PyObject *)self;
}

static void portbase_dealloc(PortBase *self)
{
    ChunkObject *c;
    /* unreachable while a chunk owns a reference to us; defensive all the same */
    for (c = self->owned; c; c = c->next)
        c->port = NULL;
    Py_CLEAR(self->handle);
    Py_CLEAR(self->lock);
    Py_CLEAR(self->take_cls);
    Py_CLEAR(self->loan_cls);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *portbase_get_handle(PortBase *self, void *closure)
{
    (void)closure;
    Py_INCREF(self->handle);
    return self->handle;
}

/* port._handle = backend handle (its address is kept for the C paths) or None. */
static int portbase_set_handle(PortBase *self, PyObject *value, void *closure)
{
    void *raw = NULL;
    (void)closure;
    if (!value)
        value = Py_None;
    if (value != Py_None) {
        PyObject *addr;
        if (check_bound() < 0)
            return -1;
        addr = PyObject_CallOneArg(address_of, value);
        if (!addr)
            return -1;
        raw = PyLong_AsVoidPtr(addr);
        Py_DECREF(addr);
        if (!raw && PyErr_Occurred())
            return -1;
    }
    Py_INCREF(value);
    Py_SETREF(self->handle, value);
    self->raw = raw;
    return 0;
}

static PyObject *portbase_get_deferred(PortBase *self, void *closure)
{
    (void)closure;
    return PyLong_FromSsize_t(self->deferred);
}

static int portbase_set_deferred(PortBase *self, PyObject *value, void *closure)
{
    Py_ssize_t n;
    (void)closure;
    if (!value) {
        PyErr_SetString(PyExc_AttributeError, "_deferred cannot be deleted");
        return -1;
    }
    n = PyLong_AsSsize_t(value);
    if (n == -1 && PyErr_Occurred())
        return -1;
    self->deferred = n;
    return 0;
}

static PyObject *portbase_get_sleepers(PortBase *self, void *closure)
{
    (void)closure;
    return PyLong_FromSsize_t(self->sleepers);
}

static PyObject *portbase_get_lock(PortBase *self, void *closure)
{
    (void)closure;
    Py_INCREF(self->lock);
    return (PyObject *)self->lock;
}

/* _setup_port(kind, take_cls, loan_cls, send_waits): what the hot paths need. */
static PyObject *portbase_setup(PortBase *self, PyObject *args)
{
    int kind, send_waits;
    PyObject *take_cls, *loan_cls;
    if (!PyArg_ParseTuple(args, "iOOp:_setup_port", &kind, &take_cls, &loan_cls, &send_waits))
        return NULL;
    if (kind < KIND_PUBLISHER || kind > KIND_SERVER) {
        PyErr_Format(PyExc_ValueError, "_setup_port: kind %d is not 1..4", kind);
        return NULL;
    }
    if ((take_cls != Py_None && (!PyType_Check(take_cls) ||
                                 !PyType_IsSubtype((PyTypeObject *)take_cls, &ChunkBaseType))) ||
        (loan_cls != Py_None && (!PyType_Check(loan_cls) ||
                                 !PyType_IsSubtype((PyTypeObject *)loan_cls, &ChunkBaseType)))) {
        PyErr_SetString(PyExc_TypeError, "_setup_port: chunk classes must derive from ChunkBase");
        return NULL;
    }
    self->kind = kind;
    self->send_waits = send_waits;
    Py_XSETREF(self->take_cls, take_cls == Py_None ? NULL : (PyTypeObject *)Py_NewRef(take_cls));
    Py_XSETREF(self->loan_cls, loan_cls == Py_None ? NULL : (PyTypeObject *)Py_NewRef(loan_cls));
    Py_RETURN_NONE;
}

/* A size the hot paths take as is: an exact int of 1..2**64-1. */
static inline int fast_size(PyObject *arg, unsigned long long *size)
{
    if (!PyLong_CheckExact(arg))
        return 0;
    *size = PyLong_AsUnsignedLongLong(arg);
    if (*size == (unsigned long long)-1 && PyErr_Occurred()) {
        PyErr_Clear();
        return 0;
    }
    return *size != 0;
}

/* loan(size): publishers and clients. */
static PyObject *port_loan(PortBase *self, PyObject *arg)
{
    unsigned long long size;
    shoal_chunk_t *h = NULL;
    int rc;
    PyObject *res;
    if (!fast_size(arg, &size)) /* the layer checks it and says what is wrong */
        return PyObject_CallMethod((PyObject *)self, "_loan_slow", "O", arg);
    if (lock_fast(self->lock) < 0)
        return NULL;
    if (!self->raw) {
        lock_release(self->lock);
        return raise_closed(self);
    }
    if (self->kind == KIND_PUBLISHER)
        rc = F.publisher_loan(self->raw, size, &h);
    else if (self->kind == KIND_CLIENT)
        rc = F.client_loan(self->raw, size, &h);
    else {
        lock_release(self->lock);
        PyErr_SetString(PyExc_TypeError, "only publishers and clients loan chunks");
        return NULL;
    }
    if (rc != SHOAL_OK) {
        res = raise_rc(self, rc, "loan", size);
        lock_release(self->lock);
        return res;
    }
    res = chunk_make(self, self->loan_cls, h, 0);
    lock_release(self->lock);
    return made(res);
}

/* One take that never waits (port lock held): the chunk, None when there is none,
 * NULL with an exception. */
static PyObject *port_take_locked(PortBase *self)
{
    shoal_chunk_t *h = NULL;
    int rc;
    if (!self->raw)
        return raise_closed(self);
    switch (self->kind) {
    case KIND_SUBSCRIBER: rc = F.subscriber_take(self->raw, &h, 0); break;
    case KIND_CLIENT: rc = F.client_take(self->raw, &h, 0); break;
    case KIND_SERVER: rc = F.server_take(self->raw, &h, 0); break;
    default:
        PyErr_SetString(PyExc_TypeError, "only subscribers, clients and servers take");
        return NULL;
    }
    if (rc == SHOAL_OK)
        return chunk_make(self, self->take_cls, h, 1);
    if (rc == SHOAL_ERR_TIMEOUT)
        Py_RETURN_NONE;
    return raise_rc(self, rc, "take", 0);
}

/* try_take(): the oldest chunk or None, never waits. */
static PyObject *port_try_take(PortBase *self, PyObject *unused)
{
    PyObject *res;
    (void)unused;
    if (lock_fast(self->lock) < 0)
        return NULL;
    res = port_take_locked(self);
    lock_release(self->lock);
    return made(res);
}

/* _wait_ready(timeout_ns) -> rc: sleep until the port may have data, at most
 * timeout_ns, WITHOUT the port lock and without the GIL (the C readiness wait may
 * overlap other calls on the port, not its destroy: close() waits for _sleepers). */
static PyObject *port_wait_ready(PortBase *self, PyObject *arg)
{
    long long t = PyLong_AsLongLong(arg);
    void *raw = self->raw;
    int kind = self->kind, rc;
    if (t == -1 && PyErr_Occurred())
        return NULL;
    if (!raw)
        return raise_closed(self);
    if (kind < KIND_SUBSCRIBER) {
        PyErr_SetString(PyExc_TypeError, "only subscribers, clients and servers wait for data");
        return NULL;
    }
    self->sleepers++;
    Py_BEGIN_ALLOW_THREADS
    rc = kind == KIND_SUBSCRIBER ? F.subscriber_wait_ready(raw, t)
         : kind == KIND_CLIENT   ? F.client_wait_ready(raw, t)
                                 : F.server_wait_ready(raw, t);
    Py_END_ALLOW_THREADS
    self->sleepers--;
    return PyLong_FromLong(rc);
}

/* Take, waiting up to timeout_ns (-1: no bound): polls under the port lock, sleeps as
 * _wait_ready does (no lock, no GIL) in slices of at most LOCK_SLICE_NS; signal
 * handlers run between slices (Ctrl-C). The chunk, or None when the time is up. */
static PyObject *take_wait_ns(PortBase *self, long long t)
{
    long long deadline = t < 0 ? -1 : mono_ns() + t;
    for (;;) {
        PyObject *res;
        void *raw;
        long long step = LOCK_SLICE_NS;
        int kind = self->kind, rc;
        if (lock_fast(self->lock) < 0)
            return NULL;
        res = port_take_locked(self);
        lock_release(self->lock);
        if (res != Py_None)
            return made(res);
        Py_DECREF(res);
        if (deadline >= 0) {
            long long left = deadline - mono_ns();
            if (left <= 0)
                Py_RETURN_NONE;
            if (left < step)
                step = left;
        }
        raw = self->raw; /* not NULL: the take above saw it under the GIL */
        self->sleepers++;
        Py_BEGIN_ALLOW_THREADS
        rc = kind == KIND_SUBSCRIBER ? F.subscriber_wait_ready(raw, step)
             : kind == KIND_CLIENT   ? F.client_wait_ready(raw, step)
                                     : F.server_wait_ready(raw, step);
        Py_END_ALLOW_THREADS
        self->sleepers--;
        if (rc != SHOAL_OK && rc != SHOAL_ERR_TIMEOUT)
            return raise_rc(self, rc, "take", 0);
        if (PyErr_CheckSignals() < 0)
            return NULL;
    }
}

/* A timeout in seconds as ns: None -1; a plain float or int in range here, anything
 * else through the layer's checks (_timeout_ns_of, which names what is wrong). */
static int timeout_ns_of(PortBase *self, PyObject *timeout, long long *ns)
{
    double d;
    if (timeout == Py_None) {
        *ns = -1;
        return 0;
    }
    if (PyFloat_CheckExact(timeout))
        d = PyFloat_AS_DOUBLE(timeout);
    else if (PyLong_CheckExact(timeout)) {
        d = PyLong_AsDouble(timeout);
        if (d == -1.0 && PyErr_Occurred())
            PyErr_Clear();
    } else
        d = -1.0;
    if (d >= 0 && d < 9.2e9) { /* below the layer's _SECONDS_MAX: no clamping needed */
        long long n = (long long)(d * 1e9);
        *ns = d > 0 && n < 1 ? 1 : n;
        return 0;
    }
    {
        PyObject *r = PyObject_CallMethod((PyObject *)self, "_timeout_ns_of", "O", timeout);
        if (!r)
            return -1;
        *ns = PyLong_AsLongLong(r);
        Py_DECREF(r);
        return *ns == -1 && PyErr_Occurred() ? -1 : 0;
    }
}

/* take(timeout=None): see take_wait_ns; Timeout (raised by the layer's _take_timed_out,
 * with the caller's timeout in its message) when the time is up. */
static PyObject *port_take(PortBase *self, PyObject *const *args, Py_ssize_t nargs,
                           PyObject *kwnames)
{
    PyObject *timeout = Py_None, *res;
    long long ns;
    Py_ssize_t nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
    if (nargs + nkw > 1 || (nkw == 1 && !PyUnicode_Check(PyTuple_GET_ITEM(kwnames, 0)))) {
        PyErr_SetString(PyExc_TypeError, "take() takes one argument: timeout (seconds or None)");
        return NULL;
    }
    if (nkw == 1) {
        if (PyUnicode_CompareWithASCIIString(PyTuple_GET_ITEM(kwnames, 0), "timeout") != 0) {
            PyErr_Format(PyExc_TypeError, "take() got an unexpected keyword argument '%U'",
                         PyTuple_GET_ITEM(kwnames, 0));
            return NULL;
        }
        timeout = args[0];
    } else if (nargs == 1)
        timeout = args[0];
    if (timeout_ns_of(self, timeout, &ns) < 0)
        return NULL;
    res = take_wait_ns(self, ns);
    if (res == Py_None) {
        Py_DECREF(res);
        res = PyObject_CallMethod((PyObject *)self, "_take_timed_out", "O", timeout);
        Py_XDECREF(res);
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_RuntimeError, "shoal: _take_timed_out did not raise");
        return NULL;
    }
    return res;
}

/* _owned_chunks(): the chunk objects that still own a chunk of this port. */
static PyObject *port_owned_chunks(PortBase *self, PyObject *unused)
{
    PyObject *list = PyList_New(0);
    ChunkObject *c;
    (void)unused;
    if (!list)
        return NULL;
    for (c = self->owned; c; c = c->next)
        if (PyList_Append(list, (PyObject *)c) < 0) {
            Py_DECREF(list);
            return NULL;
        }
    return list;
}

static PyMethodDef portbase_methods[] = {
    {"_setup_port", (PyCFunction)portbase_setup, METH_VARARGS,
     "_setup_port(kind, take_cls, loan_cls, send_waits)"},
    {"_wait_ready", (PyCFunction)port_wait_ready, METH_O,
     "_wait_ready(timeout_ns) -> rc: the readiness wait, without the port lock or the GIL"},
    {"_owned_chunks", (PyCFunction)port_owned_chunks, METH_NOARGS,
     "_owned_chunks() -> [chunk objects that still own a chunk of this port]"},
    {NULL, NULL, 0, NULL},
};

/* Bound by the layer as methods of the port classes (one per docstring). */
static PyMethodDef publisher_loan_def = {
    "loan", (PyCFunction)port_loan, METH_O,
    "loan(size)\n--\n\nLoan a chunk of `size` bytes to fill and then publish "
    "(``loan.send()``)."};
static PyMethodDef client_loan_def = {
    "loan", (PyCFunction)port_loan, METH_O,
    "loan(size)\n--\n\nLoan a request of `size` bytes; ``send()`` returns its sequence id."};
static PyMethodDef subscriber_take_def = {
    "take", (PyCFunction)(void (*)(void))port_take, METH_FASTCALL | METH_KEYWORDS,
    "take(timeout=None)\n--\n\nTake the oldest sample, waiting up to `timeout` seconds "
    "(None: no bound, 0: do not wait). Raises shoal.Timeout (a TimeoutError). Use as "
    "``with``. Sleeps without the port's lock, in slices cut short by signals (Ctrl-C)."};
static PyMethodDef client_take_def = {
    "take", (PyCFunction)(void (*)(void))port_take, METH_FASTCALL | METH_KEYWORDS,
    "take(timeout=None)\n--\n\nTake the oldest response (see Subscriber.take)."};
static PyMethodDef server_take_def = {
    "take", (PyCFunction)(void (*)(void))port_take, METH_FASTCALL | METH_KEYWORDS,
    "take(timeout=None)\n--\n\nTake the oldest request, waiting up to `timeout` seconds "
    "(None: no bound). Answer it with ``request.loan_response(size)`` or "
    "``request.respond(data)``."};
static PyMethodDef subscriber_try_take_def = {
    "try_take", (PyCFunction)port_try_take, METH_NOARGS,
    "try_take()\n--\n\nTake the oldest sample if there is one, else return None (never "
    "waits, never raises Timeout): the cheap call for busy-poll loops. Use the sample as "
    "``with``: ``s = sub.try_take()`` then ``if s: with s: ...``."};
static PyMethodDef client_try_take_def = {
    "try_take", (PyCFunction)port_try_take, METH_NOARGS,
    "try_take()\n--\n\nTake the oldest response or return None (see Subscriber.try_take)."};
static PyMethodDef server_try_take_def = {
    "try_take", (PyCFunction)port_try_take, METH_NOARGS,
    "try_take()\n--\n\nTake the oldest request or return None (see Subscriber.try_take)."};

static PyGetSetDef portbase_getset[] = {
    {"_handle", (getter)portbase_get_handle, (setter)portbase_set_handle,
     "the backend's handle of the C port (None once closed)", NULL},
    {"_deferred", (getter)portbase_get_deferred, (setter)portbase_set_deferred,
     "released chunks whose C release waits for payload exports", NULL},
    {"_lock", (getter)portbase_get_lock, NULL, "the port's PortLock", NULL},
    {"_sleepers", (getter)portbase_get_sleepers, NULL,
     "threads asleep in _wait_ready on the port (its destroy waits for them)", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject PortBaseType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "shoal._payload.PortBase",
    .tp_basicsize = sizeof(PortBase),
    .tp_dealloc = (destructor)portbase_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
    .tp_doc = "Base of the Python ports: C handle, lock and the non-blocking hot paths.",
    .tp_methods = portbase_methods,
    .tp_getset = portbase_getset,
    .tp_new = portbase_new,
};

/* ---- ChunkBase ------------------------------------------------------------------------ */

static PyObject *chunk_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"port", "handle", "address", "size", NULL};
    PyObject *port, *handle, *addr;
    unsigned long long address, size;
    ChunkObject *c;
    void *h;
    if (check_bound() < 0)
        return NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O!OKK:Chunk", kwlist, &PortBaseType, &port,
                                     &handle, &address, &size))
        return NULL;
    if (PyLong_Check(handle))
        addr = Py_NewRef(handle);
    else if (!(addr = PyObject_CallOneArg(address_of, handle)))
        return NULL;
    h = PyLong_AsVoidPtr(addr);
    Py_DECREF(addr);
    if (!h) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_ValueError, "Chunk: NULL chunk handle");
        return NULL;
    }
    if (address == 0 && size > 0) {
        PyErr_SetString(PyExc_ValueError, "Chunk: NULL address with a non-zero size");
        return NULL;
    }
    c = (ChunkObject *)type->tp_alloc(type, 0);
    if (!c)
        return NULL;
    Py_INCREF(port);
    c->port = (PortBase *)port;
    c->handle = h;
    c->data = address ? (char *)(uintptr_t)address : empty_payload;
    c->size = (Py_ssize_t)size;
    {
        PyObject *ro = PyObject_GetAttrString((PyObject *)type, "_readonly");
        c->readonly = ro ? PyObject_IsTrue(ro) : 1;
        Py_XDECREF(ro);
        PyErr_Clear();
    }
    owned_link(c->port, c);
    return made((PyObject *)c);
}

/* Owned at collection: the layer releases it and reports it (ResourceWarning). */
static void chunk_finalize(ChunkObject *c)
{
    PyObject *et, *ev, *tb, *r;
    if (!c->handle || !on_finalize)
        return;
    PyErr_Fetch(&et, &ev, &tb);
    r = PyObject_CallOneArg(on_finalize, (PyObject *)c);
    if (!r)
        PyErr_Clear(); /* never raise from a finalizer */
    Py_XDECREF(r);
    PyErr_Restore(et, ev, tb);
}

static void chunk_dealloc(ChunkObject *c)
{
    /* subclasses run the finalizer in subtype_dealloc; the base type itself here */
    if (Py_TYPE(c) == &ChunkBaseType &&
        PyObject_CallFinalizerFromDealloc((PyObject *)c) < 0)
        return;
    if (c->weakreflist)
        PyObject_ClearWeakRefs((PyObject *)c);
    if (c->handle) /* left owned (e.g. in a forked child): forget it, never touch it */
        owned_unlink(c);
    Py_CLEAR(c->view);
    Py_CLEAR(c->buf);
    Py_CLEAR(c->port);
    Py_TYPE(c)->tp_free((PyObject *)c);
}

/* ---- Payload: the exporter ---- */

static void payload_dealloc(Payload *self)
{
    /* exports > 0 is impossible here: every Py_buffer holds a reference to us. */
    Py_CLEAR(self->port);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int payload_getbuffer(PyObject *obj, Py_buffer *view, int flags)
{
    Payload *self = (Payload *)obj;
    if (self->closed) {
        PyErr_SetString(PyExc_BufferError,
                        "the chunk of this payload was released, sent or published: "
                        "its payload cannot be exported any more");
        view->obj = NULL;
        return -1;
    }
    if (PyBuffer_FillInfo(view, obj, self->data, self->size, self->readonly, flags) < 0)
        return -1;
    self->exports++;
    return 0;
}

static void payload_releasebuffer(PyObject *obj, Py_buffer *view)
{
    Payload *self = (Payload *)obj;
    PyObject *et, *ev, *tb, *r;
    (void)view;
    if (--self->exports > 0 || !self->deferred)
        return;
    /* The last export of a released chunk: its deferred C release runs now, once. */
    PyErr_Fetch(&et, &ev, &tb); /* we may run while an exception is being raised */
    r = PyObject_CallMethodOneArg((PyObject *)self->port, s_end_deferred, obj);
    if (!r)
        PyErr_WriteUnraisable(NULL);
    Py_XDECREF(r);
    PyErr_Restore(et, ev, tb);
}

/* _release_deferred(): the C release an export held back (port lock held) -> rc. */
static PyObject *payload_release_deferred(Payload *self, PyObject *unused)
{
    shoal_chunk_t *h = self->deferred;
    (void)unused;
    if (!h)
        return PyLong_FromLong(SHOAL_OK);
    self->deferred = NULL;
    return PyLong_FromLong(F.chunk_release(h));
}

static PyObject *payload_get_exports(Payload *self, void *closure)
{
    (void)closure;
    return PyLong_FromSsize_t(self->exports);
}

static PyObject *payload_get_closed(Payload *self, void *closure)
{
    (void)closure;
    return PyBool_FromLong(self->closed);
}

static PyObject *payload_get_deferred(Payload *self, void *closure)
{
    (void)closure;
    return PyBool_FromLong(self->deferred != NULL);
}

static Py_ssize_t payload_length(Payload *self) { return self->size; }

static PyObject *payload_repr(Payload *self)
{
    return PyUnicode_FromFormat("<shoal._payload.Payload %zd bytes%s%s, %zd export(s)%s>",
                                self->size, self->readonly ? " read-only" : "",
                                self->closed ? " closed" : "", self->exports,
                                self->deferred ? ", release deferred" : "");
}

static PyMethodDef payload_methods[] = {
    {"_release_deferred", (PyCFunction)payload_release_deferred, METH_NOARGS,
     "_release_deferred() -> rc: the C release held back by exports (port lock held)"},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef payload_getset[] = {
    {"exports", (getter)payload_get_exports, NULL, "live buffer exports of this object", NULL},
    {"closed", (getter)payload_get_closed, NULL, "no new export is possible", NULL},
    {"deferred", (getter)payload_get_deferred, NULL,
     "closed with live exports: the chunk's C release waits for the last one", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyBufferProcs payload_as_buffer = {
    .bf_getbuffer = payload_getbuffer,
    .bf_releasebuffer = payload_releasebuffer,
};

static PySequenceMethods payload_as_sequence = {
    .sq_length = (lenfunc)payload_length,
};

static PyTypeObject PayloadType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "shoal._payload.Payload",
    .tp_basicsize = sizeof(Payload),
    .tp_dealloc = (destructor)payload_dealloc,
    .tp_repr = (reprfunc)payload_repr,
    .tp_as_sequence = &payload_as_sequence,
    .tp_as_buffer = &payload_as_buffer,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "The buffer exporter of one chunk's payload: counts its exports (made by "
              "ChunkBase, see the module doc).",
    .tp_methods = payload_methods,
    .tp_getset = payload_getset,
};

/* The chunk's exporter, made on first use (an owned chunk only). */
static Payload *chunk_buf(ChunkObject *c)
{
    Payload *b = c->buf;
    if (b)
        return b;
    b = PyObject_New(Payload, &PayloadType);
    if (!b)
        return NULL;
    b->data = c->data;
    b->size = c->size;
    b->readonly = c->readonly;
    b->closed = 0;
    b->exports = 0;
    b->deferred = NULL;
    Py_INCREF(c->port);
    b->port = c->port;
    c->buf = b;
    return b;
}

/* Exports that outlive the primary view. */
static Py_ssize_t chunk_outstanding(ChunkObject *c, int *primary_live)
{
    Py_ssize_t n;
    *primary_live = 0;
    if (!c->buf)
        return 0;
    n = c->buf->exports;
    if (c->view) {
        PyMemoryViewObject *mv = (PyMemoryViewObject *)c->view;
        if (!(mv->flags & _Py_MEMORYVIEW_RELEASED) && mv->mbuf &&
            mv->mbuf->master.obj == (PyObject *)c->buf) {
            *primary_live = 1;
            n -= 1;                     /* the export held by the primary's managed buffer */
            n += mv->mbuf->exports - 1; /* other memoryviews sharing it (slices, ...) */
            n += mv->exports;           /* buffers exported by the primary itself */
        }
    }
    return n;
}

/* Drops the primary view (no export outlives it): it is released for whoever still
 * holds it. */
static int chunk_drop_primary(ChunkObject *c)
{
    PyObject *v = c->view;
    int rc = 0;
    c->view = NULL;
    if (v) {
        if (Py_REFCNT(v) > 1) { /* someone kept `chunk.payload`: it must die now */
            PyObject *r = PyObject_CallMethodNoArgs(v, s_release);
            if (!r)
                rc = -1;
            Py_XDECREF(r);
        }
        Py_DECREF(v);
    }
    return rc;
}

/* Drops the primary view and the exporter: the exporter refuses new exports. */
static int chunk_drop_view(ChunkObject *c)
{
    Payload *b = c->buf;
    int rc = chunk_drop_primary(c);
    c->buf = NULL;
    if (b) {
        b->closed = 1;
        Py_DECREF(b);
    }
    return rc;
}

static PyObject *released_error(ChunkObject *c, const char *op)
{
    PyObject *e = PyObject_CallMethod((PyObject *)c, "_released_error", "s", op);
    if (e) {
        PyErr_SetObject((PyObject *)Py_TYPE(e), e);
        Py_DECREF(e);
    }
    return NULL;
}

static PyObject *exported_error(ChunkObject *c, Py_ssize_t live, const char *op)
{
    PyObject *e = PyObject_CallMethod((PyObject *)c, "_exported_error", "ns", live, op);
    if (e) {
        PyErr_SetObject((PyObject *)Py_TYPE(e), e);
        Py_DECREF(e);
    }
    return NULL;
}

/* Release (port lock held): at once, or deferred while exports live. -> rc, -1 exception. */
static int chunk_release_locked(ChunkObject *c)
{
    int primary_live;
    Py_ssize_t live = chunk_outstanding(c, &primary_live);
    shoal_chunk_t *h = c->handle;
    c->handle = NULL;
    c->how = RELEASED;
    owned_unlink(c);
    if (live > 0) {
        Payload *b = c->buf;
        PyObject *v = c->view;
        c->buf = NULL;
        c->view = NULL;
        b->closed = 1;
        b->deferred = h;
        c->port->deferred++;
        /* The primary view dies with its chunk unless something re-exports it (then it
           lives on as one more export, and the release waits for it too). */
        if (primary_live && ((PyMemoryViewObject *)v)->exports == 0) {
            PyObject *r = PyObject_CallMethodNoArgs(v, s_release);
            if (!r)
                PyErr_Clear();
            Py_XDECREF(r);
        }
        Py_XDECREF(v);
        Py_DECREF(b);
        return SHOAL_OK;
    }
    if (chunk_drop_view(c) < 0) {
        F.chunk_release(h);
        return -1;
    }
    return F.chunk_release(h);
}

/* release(): return the chunk to its pool now (ReleasedError the second time). */
static PyObject *chunk_release_py(ChunkObject *c, PyObject *unused)
{
    PortBase *port = c->port;
    int rc;
    (void)unused;
    if (lock_fast(port->lock) < 0)
        return NULL;
    if (!c->handle) {
        lock_release(port->lock);
        return released_error(c, "sending or releasing it");
    }
    rc = chunk_release_locked(c);
    lock_release(port->lock);
    if (rc < 0)
        return NULL;
    if (rc != SHOAL_OK)
        return raise_rc(port, rc, "release", 0);
    Py_RETURN_NONE;
}

/* _end(): release if owned (port.close(), the finalizer); -> rc (0 when nothing to do). */
static PyObject *chunk_end(ChunkObject *c, PyObject *unused)
{
    PortBase *port = c->port;
    int rc = SHOAL_OK;
    (void)unused;
    if (lock_fast(port->lock) < 0)
        return NULL;
    if (c->handle)
        rc = chunk_release_locked(c);
    lock_release(port->lock);
    if (rc < 0)
        return NULL;
    return PyLong_FromLong(rc);
}

static PyObject *chunk_enter(ChunkObject *c, PyObject *unused)
{
    (void)unused;
    if (!c->handle)
        return released_error(c, "entering a with block");
    Py_INCREF(c);
    return (PyObject *)c;
}

static PyObject *chunk_exit(ChunkObject *c, PyObject *const *args, Py_ssize_t nargs)
{
    PortBase *port = c->port;
    int rc;
    if (!c->handle)
        Py_RETURN_FALSE; /* sent or released in the block */
    if (lock_fast(port->lock) < 0)
        return NULL;
    rc = c->handle ? chunk_release_locked(c) : SHOAL_OK;
    lock_release(port->lock);
    if (rc < 0)
        return NULL;
    if (rc != SHOAL_OK && (nargs < 1 || args[0] == Py_None))
        return raise_rc(port, rc, "release", 0);
    Py_RETURN_FALSE;
}

/* send() of a loan: the sequence id for a client's request, None otherwise. Refused
 * (nothing sent, still owned) while exports of the payload live. */
static PyObject *chunk_send(ChunkObject *c, PyObject *unused)
{
    PortBase *port = c->port;
    shoal_chunk_t *h;
    void *raw;
    uint64_t seq = 0;
    int rc, primary_live;
    Py_ssize_t live;
    (void)unused;
    if (lock_fast(port->lock) < 0)
        return NULL;
    if (!c->handle) {
        lock_release(port->lock);
        return released_error(c, "sending or releasing it");
    }
    raw = port->raw;
    if (!raw) {
        lock_release(port->lock);
        return raise_closed(port);
    }
    if (c->readonly) {
        lock_release(port->lock);
        PyErr_SetString(PyExc_TypeError, "only loans can be sent");
        return NULL;
    }
    live = chunk_outstanding(c, &primary_live);
    if (live > 0) {
        lock_release(port->lock);
        return exported_error(c, live, "send");
    }
    if (chunk_drop_view(c) < 0) {
        lock_release(port->lock);
        return NULL;
    }
    h = c->handle;
    c->handle = NULL;
    c->how = SENT;
    owned_unlink(c);
    if (port->send_waits) {
        /* WAIT policy: sliced sends without the GIL, so that Ctrl-C (and other threads)
           get in between slices; BUSY means the chunk is still ours. */
        int kind = port->kind;
        for (;;) {
            Py_BEGIN_ALLOW_THREADS
            rc = kind == KIND_PUBLISHER ? F.publisher_publish_slice(raw, h, SEND_SLICE_NS)
                 : kind == KIND_CLIENT  ? F.client_send_slice(raw, h, &seq, SEND_SLICE_NS)
                                        : F.server_send_slice(raw, h, SEND_SLICE_NS);
            Py_END_ALLOW_THREADS
            if (rc != SHOAL_ERR_BUSY)
                break;
            if (PyErr_CheckSignals() < 0) {
                /* a signal handler raised while the chunk was still ours: give it back
                   to its pool, never lose it */
                F.chunk_release(h);
                c->how = RELEASED;
                lock_release(port->lock);
                return NULL;
            }
        }
    } else {
        rc = port->kind == KIND_PUBLISHER ? F.publisher_publish(raw, h)
             : port->kind == KIND_CLIENT  ? F.client_send(raw, h, &seq)
                                          : F.server_send(raw, h);
    }
    if (rc != SHOAL_OK) {
        PyObject *res = raise_rc(port, rc, "send", 0);
        lock_release(port->lock);
        return res;
    }
    lock_release(port->lock);
    if (port->kind == KIND_CLIENT)
        return PyLong_FromUnsignedLongLong(seq);
    Py_RETURN_NONE;
}

/* loan_response(size) of a request. */
static PyObject *chunk_loan_response(ChunkObject *c, PyObject *arg)
{
    PortBase *port = c->port;
    unsigned long long size;
    shoal_chunk_t *h = NULL;
    int rc;
    PyObject *res;
    if (!fast_size(arg, &size))
        return PyObject_CallMethod((PyObject *)c, "_loan_response_slow", "O", arg);
    if (lock_fast(port->lock) < 0)
        return NULL;
    if (!port->raw) {
        lock_release(port->lock);
        return raise_closed(port);
    }
    if (!c->handle) {
        lock_release(port->lock);
        return released_error(c, "answering it");
    }
    if (port->kind != KIND_SERVER || !port->loan_cls) {
        lock_release(port->lock);
        PyErr_SetString(PyExc_TypeError, "only requests taken by a server are answered");
        return NULL;
    }
    rc = F.server_loan_response(port->raw, c->handle, size, &h);
    if (rc != SHOAL_OK) {
        res = raise_rc(port, rc, "loan_response", size);
        lock_release(port->lock);
        return res;
    }
    res = chunk_make(port, port->loan_cls, h, 0);
    lock_release(port->lock);
    return made(res);
}

/* _resize(size) of a loan: refused while exports live; the view is made anew. */
static PyObject *chunk_resize(ChunkObject *c, PyObject *arg)
{
    PortBase *port = c->port;
    unsigned long long size = PyLong_AsUnsignedLongLong(arg);
    int rc, primary_live;
    Py_ssize_t live;
    void *p;
    if (size == (unsigned long long)-1 && PyErr_Occurred())
        return NULL;
    if (lock_fast(port->lock) < 0)
        return NULL;
    if (!c->handle) {
        lock_release(port->lock);
        return released_error(c, "resizing it");
    }
    live = chunk_outstanding(c, &primary_live);
    if (live > 0) {
        lock_release(port->lock);
        return exported_error(c, live, "resize");
    }
    /* the exporter stays (the leak check holds it), with the new size */
    if (chunk_drop_primary(c) < 0) {
        lock_release(port->lock);
        return NULL;
    }
    rc = F.chunk_set_size(c->handle, size);
    p = F.chunk_payload(c->handle);
    c->data = p ? (char *)p : empty_payload;
    c->size = p ? (Py_ssize_t)F.chunk_size(c->handle) : 0;
    if (c->buf) {
        c->buf->data = c->data;
        c->buf->size = c->size;
    }
    if (rc != SHOAL_OK) {
        PyObject *res = raise_rc(port, rc, "resize", size);
        lock_release(port->lock);
        return res;
    }
    lock_release(port->lock);
    Py_RETURN_NONE;
}

static PyObject *chunk_get_payload(ChunkObject *c, void *closure)
{
    (void)closure;
    if (!c->handle)
        return released_error(c, "touching its payload");
    if (!c->view || (((PyMemoryViewObject *)c->view)->flags & _Py_MEMORYVIEW_RELEASED)) {
        Payload *b = chunk_buf(c);
        PyObject *v;
        if (!b)
            return NULL;
        v = PyMemoryView_FromObject((PyObject *)b);
        if (!v)
            return NULL;
        Py_XSETREF(c->view, v);
    }
    Py_INCREF(c->view);
    return c->view;
}

static PyObject *chunk_get_size(ChunkObject *c, void *closure)
{
    PortBase *port = c->port;
    uint64_t n;
    (void)closure;
    if (!c->handle)
        return released_error(c, "reading its size");
    if (lock_fast(port->lock) < 0)
        return NULL;
    n = c->handle ? F.chunk_size(c->handle) : 0;
    lock_release(port->lock);
    return PyLong_FromUnsignedLongLong(n);
}

static PyObject *chunk_get_sequence_id(ChunkObject *c, void *closure)
{
    PortBase *port = c->port;
    uint64_t n;
    (void)closure;
    if (!c->handle)
        return released_error(c, "reading its sequence id");
    if (lock_fast(port->lock) < 0)
        return NULL;
    n = c->handle ? F.chunk_sequence_id(c->handle) : 0;
    lock_release(port->lock);
    return PyLong_FromUnsignedLongLong(n);
}

static PyObject *chunk_get_released(ChunkObject *c, void *closure)
{
    (void)closure;
    return PyBool_FromLong(c->handle == NULL);
}

static PyObject *chunk_get_how(ChunkObject *c, void *closure)
{
    (void)closure;
    if (c->how == SENT)
        return PyUnicode_FromString("sent");
    if (c->how == RELEASED)
        return PyUnicode_FromString("released");
    Py_RETURN_NONE;
}

static PyObject *chunk_get_port(ChunkObject *c, void *closure)
{
    (void)closure;
    if (!c->port)
        Py_RETURN_NONE;
    Py_INCREF(c->port);
    return (PyObject *)c->port;
}

static PyObject *chunk_get_exports(ChunkObject *c, void *closure)
{
    int primary_live;
    (void)closure;
    return PyLong_FromSsize_t(chunk_outstanding(c, &primary_live));
}

/* _buf: the exporter of the payload (for numpy.frombuffer in array()). */
static PyObject *chunk_get_buf(ChunkObject *c, void *closure)
{
    Payload *b;
    (void)closure;
    if (!c->handle)
        return released_error(c, "exporting its payload");
    b = chunk_buf(c);
    Py_XINCREF(b);
    return (PyObject *)b;
}

static Py_ssize_t chunk_length(ChunkObject *c)
{
    PyObject *n = chunk_get_size(c, NULL);
    Py_ssize_t r;
    if (!n)
        return -1;
    r = PyLong_AsSsize_t(n);
    Py_DECREF(n);
    return r;
}

static PyMethodDef chunk_methods[] = {
    {"release", (PyCFunction)chunk_release_py, METH_NOARGS,
     "Return the chunk to its pool now. Releasing twice is an error (ReleasedError)."},
    {"__enter__", (PyCFunction)chunk_enter, METH_NOARGS, NULL},
    {"__exit__", (PyCFunction)(void (*)(void))chunk_exit, METH_FASTCALL, NULL},
    {"_end", (PyCFunction)chunk_end, METH_NOARGS,
     "_end() -> rc: release the chunk if still owned (0 when there was nothing to do)"},
    {"_resize", (PyCFunction)chunk_resize, METH_O, "_resize(size): see Loan.set_size"},
    {NULL, NULL, 0, NULL},
};

/* Bound by the layer on Loan and Request. */
static PyMethodDef chunk_send_def = {
    "send", (PyCFunction)chunk_send, METH_NOARGS,
    "send()\n--\n\nSend (or publish) the chunk; the library owns it afterwards.\n\n"
    "Returns the request's sequence id for a client's request, None otherwise. Refused "
    "while views or arrays made from the payload live (PayloadExportedError: nothing sent, "
    "the loan still yours). On a failure of the send itself the chunk is released too "
    "(nothing to clean up) and the error is raised."};
static PyMethodDef chunk_publish_def = {
    "publish", (PyCFunction)chunk_send, METH_NOARGS,
    "publish()\n--\n\nAlias of send() for a publisher's loan."};
static PyMethodDef chunk_loan_response_def = {
    "loan_response", (PyCFunction)chunk_loan_response, METH_O,
    "loan_response(size)\n--\n\nLoan a response of `size` bytes for this request (it "
    "carries the request's sequence id and routes to its client). The request stays owned "
    "by this object."};

static PyGetSetDef chunk_getset[] = {
    {"payload", (getter)chunk_get_payload, NULL,
     "Zero-copy memoryview of the payload; invalid after release.", NULL},
    {"size", (getter)chunk_get_size, NULL, "Payload bytes (what the receiver sees).", NULL},
    {"sequence_id", (getter)chunk_get_sequence_id, NULL,
     "Request/response: the request's sequence id. Samples: the publisher's count.", NULL},
    {"released", (getter)chunk_get_released, NULL,
     "True once the chunk was sent, published or released.", NULL},
    {"_how", (getter)chunk_get_how, NULL, "\"released\", \"sent\" or None (owned)", NULL},
    {"_port", (getter)chunk_get_port, NULL, "the port of the chunk", NULL},
    {"_exports", (getter)chunk_get_exports, NULL,
     "exports of the payload that outlive the primary view", NULL},
    {"_buf", (getter)chunk_get_buf, NULL, "the exporter of the payload (a Payload)", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PySequenceMethods chunk_as_sequence = {
    .sq_length = (lenfunc)chunk_length,
};

static PyTypeObject ChunkBaseType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "shoal._payload.ChunkBase",
    .tp_basicsize = sizeof(ChunkObject),
    .tp_dealloc = (destructor)chunk_dealloc,
    .tp_as_sequence = &chunk_as_sequence,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
    .tp_doc = "Base of shoal.Chunk: owns a C chunk; its payload is exported by a Payload.",
    .tp_weaklistoffset = offsetof(ChunkObject, weakreflist),
    .tp_methods = chunk_methods,
    .tp_getset = chunk_getset,
    .tp_new = chunk_new,
    .tp_finalize = (destructor)chunk_finalize,
};

/* ---- module --------------------------------------------------------------------------- */

static int table_entry(PyObject *table, const char *name, void **slot)
{
    PyObject *v = PyDict_GetItemString(table, name); /* borrowed */
    void *p;
    if (!v) {
        PyErr_Format(PyExc_KeyError, "bind(): the function table has no %s", name);
        return -1;
    }
    p = PyLong_AsVoidPtr(v);
    if (!p) {
        if (!PyErr_Occurred())
            PyErr_Format(PyExc_ValueError, "bind(): %s is NULL", name);
        return -1;
    }
    *slot = p;
    return 0;
}

/* bind(table, address_of, on_finalize): table = {"shoal_chunk_release": address, ...} */
static PyObject *mod_bind(PyObject *mod, PyObject *args)
{
    PyObject *table, *addr_fn, *fin_fn;
    (void)mod;
    if (!PyArg_ParseTuple(args, "O!OO:bind", &PyDict_Type, &table, &addr_fn, &fin_fn))
        return NULL;
#define ENTRY(field)                                                             \
    if (table_entry(table, "shoal_" #field, (void **)&F.field) < 0)              \
        return NULL;
    ENTRY(publisher_loan)
    ENTRY(publisher_publish)
    ENTRY(subscriber_take)
    ENTRY(client_loan)
    ENTRY(client_send)
    ENTRY(client_take)
    ENTRY(server_take)
    ENTRY(server_loan_response)
    ENTRY(server_send)
    ENTRY(chunk_payload)
    ENTRY(chunk_size)
    ENTRY(chunk_set_size)
    ENTRY(chunk_sequence_id)
    ENTRY(chunk_release)
    ENTRY(publisher_publish_slice)
    ENTRY(client_send_slice)
    ENTRY(server_send_slice)
    ENTRY(subscriber_wait_ready)
    ENTRY(client_wait_ready)
    ENTRY(server_wait_ready)
#undef ENTRY
    Py_INCREF(addr_fn);
    Py_XSETREF(address_of, addr_fn);
    Py_INCREF(fin_fn);
    Py_XSETREF(on_finalize, fin_fn);
    bound = 1;
    Py_RETURN_NONE;
}

/* A method descriptor of `type` for `def` with docstring `doc` (kept alive by the module). */
static PyObject *make_method(PyObject *module, PyTypeObject *type, PyMethodDef *def,
                             const char *name)
{
    PyObject *d = PyDescr_NewMethod(type, def);
    if (!d)
        return NULL;
    if (PyModule_AddObject(module, name, d) < 0) {
        Py_DECREF(d);
        return NULL;
    }
    return d;
}

/* set_chunk_hook(hook or None): see chunk_hook. */
static PyObject *mod_set_chunk_hook(PyObject *mod, PyObject *hook)
{
    (void)mod;
    if (hook != Py_None && !PyCallable_Check(hook)) {
        PyErr_SetString(PyExc_TypeError, "the chunk hook must be callable or None");
        return NULL;
    }
    Py_XSETREF(chunk_hook, hook == Py_None ? NULL : Py_NewRef(hook));
    Py_RETURN_NONE;
}

static PyObject *mod_get_chunk_hook(PyObject *mod, PyObject *unused)
{
    (void)mod;
    (void)unused;
    if (!chunk_hook)
        Py_RETURN_NONE;
    return Py_NewRef(chunk_hook);
}

static PyMethodDef module_methods[] = {
    {"set_chunk_hook", (PyCFunction)mod_set_chunk_hook, METH_O,
     "set_chunk_hook(hook): hook(\"new\", chunk) for every chunk object made; None: off"},
    {"get_chunk_hook", (PyCFunction)mod_get_chunk_hook, METH_NOARGS,
     "get_chunk_hook() -> the hook set by set_chunk_hook, or None"},
    {"bind", (PyCFunction)mod_bind, METH_VARARGS,
     "bind(table, address_of, on_finalize): the backend's C functions (name -> address), "
     "a backend handle -> int address function, and the garbage-collector release hook"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef payload_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "shoal._payload",
    .m_doc = "The chunk lifecycle of shoal's Python layer in C (chunks exporting their "
             "payload with counted exports, port hot paths, port locks).",
    .m_size = -1,
    .m_methods = module_methods,
};

PyMODINIT_FUNC PyInit__payload(void)
{
    PyObject *m;
    if (PyType_Ready(&PortLockType) < 0 || PyType_Ready(&PortBaseType) < 0 ||
        PyType_Ready(&ChunkBaseType) < 0 || PyType_Ready(&PayloadType) < 0)
        return NULL;
    if (!(s_release = PyUnicode_InternFromString("release")) ||
        !(s_h = PyUnicode_InternFromString("_h")) ||
        !(s_fail = PyUnicode_InternFromString("_fail")) ||
        !(s_released_error = PyUnicode_InternFromString("_released_error")) ||
        !(s_exported_error = PyUnicode_InternFromString("_exported_error")) ||
        !(s_end_deferred = PyUnicode_InternFromString("_end_deferred")))
        return NULL;
    m = PyModule_Create(&payload_module);
    if (!m)
        return NULL;
    Py_INCREF(&PortLockType);
    Py_INCREF(&PortBaseType);
    Py_INCREF(&ChunkBaseType);
    Py_INCREF(&PayloadType);
    if (PyModule_AddObject(m, "Payload", (PyObject *)&PayloadType) < 0 ||
        PyModule_AddObject(m, "PortLock", (PyObject *)&PortLockType) < 0 ||
        PyModule_AddObject(m, "PortBase", (PyObject *)&PortBaseType) < 0 ||
        PyModule_AddObject(m, "ChunkBase", (PyObject *)&ChunkBaseType) < 0 ||
        !make_method(m, &PortBaseType, &publisher_loan_def, "publisher_loan") ||
        !make_method(m, &PortBaseType, &client_loan_def, "client_loan") ||
        !make_method(m, &PortBaseType, &subscriber_take_def, "subscriber_take") ||
        !make_method(m, &PortBaseType, &client_take_def, "client_take") ||
        !make_method(m, &PortBaseType, &server_take_def, "server_take") ||
        !make_method(m, &PortBaseType, &subscriber_try_take_def, "subscriber_try_take") ||
        !make_method(m, &PortBaseType, &client_try_take_def, "client_try_take") ||
        !make_method(m, &PortBaseType, &server_try_take_def, "server_try_take") ||
        !make_method(m, &ChunkBaseType, &chunk_send_def, "chunk_send") ||
        !make_method(m, &ChunkBaseType, &chunk_publish_def, "chunk_publish") ||
        !make_method(m, &ChunkBaseType, &chunk_loan_response_def, "chunk_loan_response")) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
