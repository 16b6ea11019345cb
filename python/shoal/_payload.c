/*
 * shoal._payload: the one buffer exporter of a chunk's payload.
 *
 * Payload(address, size, readonly, owner) exports `size` bytes at `address` with the
 * buffer protocol (read-only if `readonly`) and counts its exports itself
 * (bf_getbuffer / bf_releasebuffer). It keeps `owner` alive while it lives (the
 * Python layer passes the port, which keeps the runtime and so the mapping alive).
 *
 * The chunk object makes one "primary" memoryview of it (chunk.payload). Slices of a
 * memoryview share its managed buffer and do not call back into the exporter, so
 * close(primary) counts what outlives the primary view: other memoryviews on its
 * managed buffer (slices, memoryview(view), numpy.frombuffer(view)), buffers exported
 * by the primary itself, and exports made from this object directly (loan.array()).
 *
 *   close(primary)                  no export outlives the primary view: release the
 *                                   view, refuse new exports, drop the owner, return 0.
 *                                   Otherwise change nothing and return how many live.
 *   close(primary, callback, arg)   the same, but with live exports the object closes
 *                                   anyway: no new export, the primary view released if
 *                                   nothing re-exports it, and callback(arg) is called
 *                                   once, when the last export is released (a deferred
 *                                   release of the chunk). Returns how many were live;
 *                                   0 means nothing was deferred (release now).
 *
 * No dependency on cffi or SWIG: the backends hand the layer a raw address.
 * Runs with the GIL held (every entry point is called by the interpreter).
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

typedef struct {
    PyObject_HEAD
    char *data;
    Py_ssize_t size;
    int readonly;
    int closed;
    Py_ssize_t exports; /* live Py_buffers handed out by payload_getbuffer */
    PyObject *owner;    /* kept alive while this object lives (until closed) */
    PyObject *callback; /* deferred release: callback(arg) when exports drops to 0 */
    PyObject *arg;
} Payload;

/* A zero-size payload still needs a non-NULL address for some consumers. */
static char empty_payload[1];

static PyObject *payload_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"address", "size", "readonly", "owner", NULL};
    unsigned long long address;
    Py_ssize_t size;
    int readonly;
    PyObject *owner = Py_None;
    Payload *self;

    if (!PyArg_ParseTupleAndKeywords(args, kwds, "Knp|O:Payload", kwlist, &address, &size,
                                     &readonly, &owner))
        return NULL;
    if (size < 0) {
        PyErr_SetString(PyExc_ValueError, "Payload: size must be >= 0");
        return NULL;
    }
    if (address == 0 && size > 0) {
        PyErr_SetString(PyExc_ValueError, "Payload: NULL address with a non-zero size");
        return NULL;
    }
    self = (Payload *)type->tp_alloc(type, 0);
    if (!self)
        return NULL;
    self->data = address ? (char *)(uintptr_t)address : empty_payload;
    self->size = size;
    self->readonly = readonly;
    Py_INCREF(owner);
    self->owner = owner;
    return (PyObject *)self;
}

static void payload_dealloc(Payload *self)
{
    /* exports > 0 is impossible here: every Py_buffer holds a reference to us. */
    Py_CLEAR(self->owner);
    Py_CLEAR(self->callback);
    Py_CLEAR(self->arg);
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
    PyObject *callback, *arg, *owner, *res;
    PyObject *et, *ev, *tb;
    (void)view;

    if (--self->exports > 0 || !self->callback)
        return;
    /* The last export of a closed payload: the deferred release runs now, once. */
    callback = self->callback;
    arg = self->arg;
    owner = self->owner;
    self->callback = NULL;
    self->arg = NULL;
    self->owner = NULL;
    PyErr_Fetch(&et, &ev, &tb); /* we may run while an exception is being raised */
    res = PyObject_CallOneArg(callback, arg ? arg : Py_None);
    if (!res)
        PyErr_WriteUnraisable(callback);
    Py_XDECREF(res);
    PyErr_Restore(et, ev, tb);
    Py_DECREF(callback);
    Py_XDECREF(arg);
    Py_XDECREF(owner);
}

/* Exports that outlive `primary` (a memoryview of this object, or None). */
static Py_ssize_t payload_outstanding(Payload *self, PyObject *primary, int *primary_live)
{
    Py_ssize_t n = self->exports;
    *primary_live = 0;
    if (primary && PyMemoryView_Check(primary)) {
        PyMemoryViewObject *mv = (PyMemoryViewObject *)primary;
        if (!(mv->flags & _Py_MEMORYVIEW_RELEASED) && mv->mbuf &&
            mv->mbuf->master.obj == (PyObject *)self) {
            *primary_live = 1;
            n -= 1;                     /* the export held by the primary's managed buffer */
            n += mv->mbuf->exports - 1; /* other memoryviews sharing it (slices, ...) */
            n += mv->exports;           /* buffers exported by the primary itself */
        }
    }
    return n;
}

static int release_view(PyObject *primary)
{
    PyObject *res = PyObject_CallMethod(primary, "release", NULL);
    if (!res)
        return -1;
    Py_DECREF(res);
    return 0;
}

static PyObject *payload_close(Payload *self, PyObject *const *args, Py_ssize_t nargs)
{
    PyObject *primary, *callback = Py_None, *arg = Py_None, *owner;
    Py_ssize_t live;
    int primary_live;

    if (nargs < 1 || nargs > 3) {
        PyErr_SetString(PyExc_TypeError, "close(primary, callback=None, arg=None)");
        return NULL;
    }
    primary = args[0];
    if (nargs > 1)
        callback = args[1];
    if (nargs > 2)
        arg = args[2];
    if (self->closed)
        return PyLong_FromLong(0);
    live = payload_outstanding(self, primary, &primary_live);
    if (live > 0) {
        if (callback == Py_None)
            return PyLong_FromSsize_t(live); /* nothing changed */
        self->closed = 1;
        Py_INCREF(callback);
        Py_INCREF(arg);
        self->callback = callback;
        self->arg = arg;
        /* The primary view dies with its chunk unless something re-exports it (then it
           lives on as one more export, and the release waits for it too). */
        if (primary_live && ((PyMemoryViewObject *)primary)->exports == 0 &&
            release_view(primary) < 0)
            PyErr_Clear();
        return PyLong_FromSsize_t(live);
    }
    self->closed = 1;
    if (primary_live && release_view(primary) < 0)
        return NULL;
    owner = self->owner;
    self->owner = NULL;
    Py_XDECREF(owner);
    return PyLong_FromLong(0);
}

static PyObject *payload_outstanding_py(Payload *self, PyObject *primary)
{
    int primary_live;
    return PyLong_FromSsize_t(payload_outstanding(self, primary, &primary_live));
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
    return PyBool_FromLong(self->callback != NULL);
}

static PyObject *payload_get_address(Payload *self, void *closure)
{
    (void)closure;
    return PyLong_FromUnsignedLongLong((unsigned long long)(uintptr_t)self->data);
}

static PyObject *payload_get_readonly(Payload *self, void *closure)
{
    (void)closure;
    return PyBool_FromLong(self->readonly);
}

static Py_ssize_t payload_length(Payload *self) { return self->size; }

static PyObject *payload_repr(Payload *self)
{
    return PyUnicode_FromFormat("<shoal._payload.Payload %zd bytes%s%s, %zd export(s)%s>",
                                self->size, self->readonly ? " read-only" : "",
                                self->closed ? " closed" : "", self->exports,
                                self->callback ? ", release deferred" : "");
}

static PyMethodDef payload_methods[] = {
    {"close", (PyCFunction)(void (*)(void))payload_close, METH_FASTCALL,
     "close(primary, callback=None, arg=None) -> number of live exports (see the module doc)"},
    {"outstanding", (PyCFunction)payload_outstanding_py, METH_O,
     "outstanding(primary) -> exports that outlive the memoryview `primary`"},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef payload_getset[] = {
    {"exports", (getter)payload_get_exports, NULL, "live buffer exports of this object", NULL},
    {"closed", (getter)payload_get_closed, NULL, "no new export is possible", NULL},
    {"deferred", (getter)payload_get_deferred, NULL,
     "closed with live exports: a callback waits for the last one", NULL},
    {"address", (getter)payload_get_address, NULL, "address of the first byte", NULL},
    {"readonly", (getter)payload_get_readonly, NULL, "exports are read-only", NULL},
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
    .tp_doc = "Payload(address, size, readonly, owner): buffer exporter of a chunk's "
              "payload that counts its exports (see the module doc).",
    .tp_methods = payload_methods,
    .tp_getset = payload_getset,
    .tp_new = payload_new,
};

static struct PyModuleDef payload_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "shoal._payload",
    .m_doc = "The buffer exporter of chunk payloads (counts its exports; deferred release).",
    .m_size = -1,
};

PyMODINIT_FUNC PyInit__payload(void)
{
    PyObject *m;
    if (PyType_Ready(&PayloadType) < 0)
        return NULL;
    m = PyModule_Create(&payload_module);
    if (!m)
        return NULL;
    Py_INCREF(&PayloadType);
    if (PyModule_AddObject(m, "Payload", (PyObject *)&PayloadType) < 0) {
        Py_DECREF(&PayloadType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
