/*
 * shoal_python.i - Python typemaps for shoal.i (the module shoal_swig).
 *
 * A thin, 1:1 module, like the cffi one (see python/shoal/BACKEND.md); the
 * Pythonic layer (python/shoal/_api.py, through _backend_swig.py) sits on top.
 *  - Functions return their shoal_result_t as an int; a function with an
 *    out-parameter returns (rc, value), value None when rc != 0. The caller
 *    reads shoal_last_error_message() right after a failure, on the same thread.
 *  - Handles are SWIG pointer objects.
 *  - shoal_chunk_payload(chunk) returns a writable memoryview over the chunk's
 *    payload, shoal_chunk_size() bytes (zero-copy: PyMemoryView_FromMemory). It
 *    is valid only until the chunk is released, sent or published.
 *  - shoal_swig_chunk_view(chunk) returns (address, size) of the payload as ints:
 *    the Python package exports that memory with its own counting buffer exporter
 *    (python/shoal/_payload.c), shared by both backends.
 *  - Every call releases the GIL (threads="1"), so a blocking take in one thread
 *    never stops another thread that would answer it.
 */

%{
/* (rc, value): steals the reference to value. */
static PyObject *shoal_swig_pair(PyObject *rc, PyObject *value)
{
    PyObject *pair;
    if (!value) {
        Py_DECREF(rc);
        return NULL;
    }
    pair = PyTuple_Pack(2, rc, value);
    Py_DECREF(value);
    Py_DECREF(rc);
    return pair;
}
%}

/* ---- shoal_swig_chunk_view: where a chunk's payload is ------------------------ */
/* (address, size) of the payload as two ints, (0, 0) for a chunk without payload.
   The Python package exports that memory with its own buffer exporter
   (python/shoal/_payload.c), which counts the exports; this module only says where it is.
   Runs with the GIL held: it creates Python objects. */
%nothread shoal_swig_chunk_view;
%inline %{
PyObject *shoal_swig_chunk_view(const shoal_chunk_t *chunk)
{
    void *data = shoal_chunk_payload(chunk);
    return Py_BuildValue("(KK)", (unsigned long long)(uintptr_t)data,
                         (unsigned long long)(data ? shoal_chunk_size(chunk) : 0));
}
%}

/* Results: the code as an int. */
%typemap(out) shoal_result_t {
    $result = PyLong_FromLong((long)$1);
}

/* Handles: SWIG's pointer objects do. */
%define SHOAL_HANDLE_TYPEMAPS(TYPE)
%enddef

%typemap(in, numinputs=0) SWIGTYPE **SHOAL_OUT_HANDLE ($*1_ltype handle = NULL) {
    $1 = &handle;
}
%typemap(argout) SWIGTYPE **SHOAL_OUT_HANDLE {
    $result = shoal_swig_pair($result, result == SHOAL_OK && handle$argnum
        ? SWIG_NewPointerObj(handle$argnum, $*1_descriptor, 0) : SWIG_Py_Void());
    if (!$result)
        SWIG_fail;
}

%typemap(in, numinputs=0) uint64_t *SHOAL_OUT_U64 (uint64_t value = 0) {
    $1 = &value;
}
%typemap(argout) uint64_t *SHOAL_OUT_U64 {
    $result = shoal_swig_pair($result, result == SHOAL_OK
        ? PyLong_FromUnsignedLongLong(value$argnum) : SWIG_Py_Void());
    if (!$result)
        SWIG_fail;
}

%typemap(in, numinputs=0) int *SHOAL_OUT_INT (int value = -1) {
    $1 = &value;
}
%typemap(argout) int *SHOAL_OUT_INT {
    $result = shoal_swig_pair($result, result == SHOAL_OK ? PyLong_FromLong(value$argnum) : SWIG_Py_Void());
    if (!$result)
        SWIG_fail;
}

/* Info structs: a new object owned by Python. */
%typemap(in, numinputs=0) SWIGTYPE *SHOAL_OUT_STRUCT {
    $1 = ($1_ltype)calloc(1, sizeof($*1_ltype));
    if (!$1)
        SWIG_exception_fail(SWIG_MemoryError, "out of memory");
    $1->version = SHOAL_SWIG_VERSION($*1_ltype);
}
%typemap(argout) SWIGTYPE *SHOAL_OUT_STRUCT {
    if (result == SHOAL_OK) {
        $result = shoal_swig_pair($result, SWIG_NewPointerObj($1, $1_descriptor, SWIG_POINTER_OWN));
        $1 = NULL;
    } else {
        $result = shoal_swig_pair($result, SWIG_Py_Void());
    }
    if (!$result)
        SWIG_fail;
}
%typemap(freearg) SWIGTYPE *SHOAL_OUT_STRUCT {
    free($1);
}

/* Zero-copy payload (b"" for a chunk without payload, as the cffi backend). */
%typemap(out) void *shoal_chunk_payload {
    if ($1)
        $result = PyMemoryView_FromMemory((char *)$1, (Py_ssize_t)shoal_chunk_size(arg1), PyBUF_WRITE);
    else
        $result = PyBytes_FromStringAndSize("", 0);
}

/* shoal_waitset_wait(ws, capacity, timeout_ns) -> (rc, [ready tags]). */
%typemap(in) (uint64_t *ready_tags, size_t capacity, size_t *ready_count) (size_t count = 0) {
    unsigned long long cap = PyLong_AsUnsignedLongLong($input);
    if (PyErr_Occurred())
        SWIG_fail;
    if (cap == 0 || cap > 65536)
        SWIG_exception_fail(SWIG_ValueError, "capacity must be 1..65536");
    $2 = (size_t)cap;
    $1 = (uint64_t *)calloc($2, sizeof(uint64_t));
    if (!$1)
        SWIG_exception_fail(SWIG_MemoryError, "out of memory");
    $3 = &count;
}
%typemap(argout) (uint64_t *ready_tags, size_t capacity, size_t *ready_count) {
    PyObject *tags;
    size_t i, n = result == SHOAL_OK ? count$argnum : 0;
    if (n > $2)
        n = $2;
    tags = PyList_New((Py_ssize_t)n);
    for (i = 0; tags && i < n; i++)
        PyList_SET_ITEM(tags, (Py_ssize_t)i, PyLong_FromUnsignedLongLong($1[i]));
    $result = shoal_swig_pair($result, tags);
    if (!$result)
        SWIG_fail;
}
%typemap(freearg) (uint64_t *ready_tags, size_t capacity, size_t *ready_count) {
    free($1);
}
