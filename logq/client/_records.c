/* The compiled twin of the record codec in logq/client/records.py: the records section of a RecordBatch v2
 * (Kafka's record format: a length-prefixed record per entry, zigzag varints, see logq/batch.py).
 *
 * Two hot paths, each a drop-in for its pure-Python version, which stays as the fallback:
 *   RecordsBuffer.append  encodes one record into a growing buffer (BatchBuilder.append);
 *   decode_records        decodes a whole (decompressed) records section into ConsumerRecord tuples.
 * The batch header, compression and the CRC stay in Python: they run once per batch.
 *
 * Both must behave exactly as the Python code does: the same bytes out of the encoder, the same records or
 * the same error (logq.batch.BatchError and its message) out of the decoder, for any input.
 * tests/client/test_records_compiled.py checks that with hypothesis. Fetched data is untrusted: every read
 * is bounds-checked, and Python's unbounded ints are followed where the format allows more than 64 bits
 * (a varint carries up to 70; an offset or timestamp is an int64 plus such a delta), with 128-bit integers.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>
#include <structmember.h>
#include <time.h>

#ifndef __SIZEOF_INT128__
#error "this codec needs 128-bit integers (gcc or clang on a 64-bit target); logq falls back to Python"
#endif

typedef __int128 i128;
typedef unsigned __int128 u128;

/* What records.py hands over once (setup): the record type to build and the error to raise. */
static PyTypeObject *record_type = NULL;
static PyObject *batch_error = NULL;

/* ---------------------------------------------------------------------------------------------------- */
/* Encoding                                                                                               */

#define HEADER_SIZE 61 /* logq.batch.HEADER_SIZE: what `size` adds to the records */

static inline Py_ssize_t varint_size(uint64_t zigzag)
{
    Py_ssize_t n = 1;
    while (zigzag >= 0x80) {
        zigzag >>= 7;
        n++;
    }
    return n;
}

static inline uint64_t zigzag(int64_t value)
{
    return ((uint64_t)value << 1) ^ (uint64_t)(value >> 63);
}

static inline char *put_varint(char *out, uint64_t zigzag)
{
    while (zigzag >= 0x80) {
        *out++ = (char)((zigzag & 0x7F) | 0x80);
        zigzag >>= 7;
    }
    *out++ = (char)zigzag;
    return out;
}

typedef struct {
    PyObject_HEAD
    char *data;
    Py_ssize_t length;
    Py_ssize_t capacity;
    int64_t base_timestamp;
    int64_t max_timestamp;
    Py_ssize_t count;
    Py_ssize_t size_limit;
} RecordsBuffer;

static int RecordsBuffer_init(RecordsBuffer *self, PyObject *args, PyObject *kwds)
{
    static char *keywords[] = {"base_timestamp", "size_limit", NULL};
    long long base_timestamp;
    Py_ssize_t size_limit;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "Ln:RecordsBuffer", keywords, &base_timestamp, &size_limit))
        return -1;
    self->base_timestamp = base_timestamp;
    self->max_timestamp = base_timestamp;
    self->size_limit = size_limit;
    self->count = 0;
    self->length = 0;
    return 0;
}

static void RecordsBuffer_dealloc(RecordsBuffer *self)
{
    PyMem_Free(self->data);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* A bytes-like argument (None allowed when `nullable`): its bytes in view->buf and view->len, view->obj
 * NULL for None. Exact bytes skip the buffer protocol (the common case, and measurably cheaper). */
static int get_bytes(PyObject *obj, Py_buffer *view, int nullable)
{
    if (nullable && obj == Py_None) {
        view->obj = NULL;
        view->buf = NULL;
        view->len = -1;
        return 0;
    }
    if (PyBytes_CheckExact(obj)) {
        view->obj = Py_None; /* marks "present, nothing to release" */
        view->buf = PyBytes_AS_STRING(obj);
        view->len = PyBytes_GET_SIZE(obj);
        return 0;
    }
    return PyObject_GetBuffer(obj, view, PyBUF_SIMPLE);
}

static void release_bytes(Py_buffer *view)
{
    if (view->obj != NULL && view->obj != Py_None)
        PyBuffer_Release(view);
}

/* append(key, value, headers, timestamp): as BatchBuilder.append in records.py. */
static PyObject *RecordsBuffer_append(RecordsBuffer *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 4) {
        PyErr_Format(PyExc_TypeError, "append() takes 4 arguments (%zd given)", nargs);
        return NULL;
    }
    int overflow;
    /* not PyLong_AsLongLong: for a millisecond timestamp (two 30-bit digits) that goes through a byte
     * array, at several times the cost */
    long long timestamp = PyLong_AsLongLongAndOverflow(args[3], &overflow);
    if (timestamp == -1 && PyErr_Occurred())
        return NULL;
    if (overflow) {
        PyErr_SetString(PyExc_OverflowError, "the timestamp does not fit 64 bits");
        return NULL;
    }
    int64_t delta;
    if (__builtin_sub_overflow((int64_t)timestamp, self->base_timestamp, &delta)) {
        PyErr_SetString(PyExc_OverflowError, "the timestamp is too far from the batch's first one");
        return NULL;
    }
    Py_buffer key, value, headers;
    if (get_bytes(args[0], &key, 1) < 0)
        return NULL;
    if (get_bytes(args[1], &value, 1) < 0) {
        release_bytes(&key);
        return NULL;
    }
    if (get_bytes(args[2], &headers, 0) < 0) {
        release_bytes(&key);
        release_bytes(&value);
        return NULL;
    }
    PyObject *result = NULL;
    uint64_t ts_zz = zigzag(delta);
    uint64_t count_zz = zigzag((int64_t)self->count);
    /* attributes, timestamp delta, offset delta, key, value, headers: the record's body */
    Py_ssize_t body = 1 + varint_size(ts_zz) + varint_size(count_zz) + headers.len;
    body += key.obj == NULL ? 1 : varint_size(zigzag(key.len)) + key.len;
    body += value.obj == NULL ? 1 : varint_size(zigzag(value.len)) + value.len;
    if (self->count && self->length + body + 5 > self->size_limit) {
        result = Py_NewRef(Py_None); /* full: the batch is closed, the record goes to the next one */
        goto done;
    }
    uint64_t body_zz = zigzag(body);
    Py_ssize_t needed = self->length + varint_size(body_zz) + body;
    if (needed > self->capacity) {
        if (needed > PY_SSIZE_T_MAX / 2) {
            PyErr_NoMemory();
            goto done;
        }
        Py_ssize_t capacity = self->capacity ? self->capacity : 1024;
        while (capacity < needed)
            capacity *= 2;
        char *grown = PyMem_Realloc(self->data, (size_t)capacity);
        if (grown == NULL) {
            PyErr_NoMemory();
            goto done;
        }
        self->data = grown;
        self->capacity = capacity;
    }
    char *out = self->data + self->length;
    out = put_varint(out, body_zz);
    *out++ = 0;
    out = put_varint(out, ts_zz);
    out = put_varint(out, count_zz);
    if (key.obj == NULL) {
        *out++ = 1; /* zigzag -1: null */
    } else {
        out = put_varint(out, zigzag(key.len));
        memcpy(out, key.buf, (size_t)key.len);
        out += key.len;
    }
    if (value.obj == NULL) {
        *out++ = 1;
    } else {
        out = put_varint(out, zigzag(value.len));
        memcpy(out, value.buf, (size_t)value.len);
        out += value.len;
    }
    memcpy(out, headers.buf, (size_t)headers.len);
    self->length = needed;
    if (timestamp > self->max_timestamp)
        self->max_timestamp = timestamp;
    result = PyLong_FromSsize_t(self->count++);
done:
    release_bytes(&key);
    release_bytes(&value);
    release_bytes(&headers);
    return result;
}

static PyObject *RecordsBuffer_section(RecordsBuffer *self, PyObject *Py_UNUSED(ignored))
{
    return PyBytes_FromStringAndSize(self->data, self->length);
}

static PyObject *RecordsBuffer_get_size(RecordsBuffer *self, void *Py_UNUSED(closure))
{
    return PyLong_FromSsize_t(HEADER_SIZE + self->length);
}

static PyObject *RecordsBuffer_get_base_timestamp(RecordsBuffer *self, void *Py_UNUSED(closure))
{
    return PyLong_FromLongLong(self->base_timestamp);
}

static PyObject *RecordsBuffer_get_max_timestamp(RecordsBuffer *self, void *Py_UNUSED(closure))
{
    return PyLong_FromLongLong(self->max_timestamp);
}

static PyObject *RecordsBuffer_get_count(RecordsBuffer *self, void *Py_UNUSED(closure))
{
    return PyLong_FromSsize_t(self->count);
}

static PyObject *RecordsBuffer_get_size_limit(RecordsBuffer *self, void *Py_UNUSED(closure))
{
    return PyLong_FromSsize_t(self->size_limit);
}

static PyMethodDef RecordsBuffer_methods[] = {
    {"append", (PyCFunction)(void (*)(void))RecordsBuffer_append, METH_FASTCALL,
     "append(key, value, headers, timestamp): encode one record; its offset delta, or None when full."},
    {"section", (PyCFunction)RecordsBuffer_section, METH_NOARGS, "The records section so far (bytes)."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef RecordsBuffer_getset[] = {
    {"size", (getter)RecordsBuffer_get_size, NULL, "The batch's size so far: header and records.", NULL},
    {"base_timestamp", (getter)RecordsBuffer_get_base_timestamp, NULL, NULL, NULL},
    {"max_timestamp", (getter)RecordsBuffer_get_max_timestamp, NULL, NULL, NULL},
    {"count", (getter)RecordsBuffer_get_count, NULL, NULL, NULL},
    {"size_limit", (getter)RecordsBuffer_get_size_limit, NULL, NULL, NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject RecordsBufferType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "logq.client._records.RecordsBuffer",
    .tp_doc = "RecordsBuffer(base_timestamp, size_limit): the records of one batch, encoded as they arrive.",
    .tp_basicsize = sizeof(RecordsBuffer),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)RecordsBuffer_init,
    .tp_dealloc = (destructor)RecordsBuffer_dealloc,
    .tp_methods = RecordsBuffer_methods,
    .tp_getset = RecordsBuffer_getset,
};

/* ---------------------------------------------------------------------------------------------------- */
/* Sending: what the producer's send makes for every record besides its bytes                           */

/* The fields of a RecordFuture (logq/client/producer_futures.py subclasses this): its batch's completion,
 * its offset delta and its timestamp. Made in C, a future costs a third of a Python __init__. */
typedef struct {
    PyObject_HEAD
    PyObject *completion;
    PyObject *delta;
    PyObject *timestamp;
} FutureFields;

static PyObject *FutureFields_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    PyObject *completion, *delta, *timestamp;
    if ((kwds != NULL && PyDict_GET_SIZE(kwds)) ||
        !PyArg_UnpackTuple(args, type->tp_name, 3, 3, &completion, &delta, &timestamp)) {
        if (!PyErr_Occurred())
            PyErr_Format(PyExc_TypeError, "%s() takes 3 positional arguments", type->tp_name);
        return NULL;
    }
    FutureFields *self = (FutureFields *)type->tp_alloc(type, 0);
    if (self == NULL)
        return NULL;
    self->completion = Py_NewRef(completion);
    self->delta = Py_NewRef(delta);
    self->timestamp = Py_NewRef(timestamp);
    return (PyObject *)self;
}

static int FutureFields_traverse(FutureFields *self, visitproc visit, void *arg)
{
    /* (a Python subclass's own traverse visits its type, then calls this) */
    Py_VISIT(self->completion);
    Py_VISIT(self->delta);
    Py_VISIT(self->timestamp);
    return 0;
}

static int FutureFields_clear(FutureFields *self)
{
    Py_CLEAR(self->completion);
    Py_CLEAR(self->delta);
    Py_CLEAR(self->timestamp);
    return 0;
}

static void FutureFields_dealloc(FutureFields *self)
{
    PyTypeObject *type = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    FutureFields_clear(self);
    type->tp_free((PyObject *)self);
}

static PyMemberDef FutureFields_members[] = {
    {"_c", T_OBJECT_EX, offsetof(FutureFields, completion), READONLY, NULL},
    {"_delta", T_OBJECT_EX, offsetof(FutureFields, delta), READONLY, NULL},
    {"_ts", T_OBJECT_EX, offsetof(FutureFields, timestamp), READONLY, NULL},
    {NULL, 0, 0, 0, NULL},
};

static PyTypeObject FutureFieldsType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "logq.client._records.FutureFields",
    .tp_doc = "FutureFields(completion, delta, timestamp): what a RecordFuture refers to.",
    .tp_basicsize = sizeof(FutureFields),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_new = FutureFields_new,
    .tp_traverse = (traverseproc)FutureFields_traverse,
    .tp_clear = (inquiry)FutureFields_clear,
    .tp_dealloc = (destructor)FutureFields_dealloc,
    .tp_members = FutureFields_members,
};

/* now_ms(): time.time_ns() // 1_000_000, without the two large ints on the way. */
static PyObject *now_ms(PyObject *Py_UNUSED(module), PyObject *Py_UNUSED(ignored))
{
    struct timespec now;
    if (clock_gettime(CLOCK_REALTIME, &now) != 0)
        return PyErr_SetFromErrno(PyExc_OSError);
    return PyLong_FromLongLong((long long)now.tv_sec * 1000 + now.tv_nsec / 1000000);
}

/* ---------------------------------------------------------------------------------------------------- */
/* Decoding                                                                                               */

static const char TRUNCATED[] = "a records section is truncated";
static const char LENGTH_MISMATCH[] = "a record's length does not match its fields";
static const char VARINT_TOO_LONG[] = "varint is too long";
static const char NEGATIVE_NAME[] = "a header's name has a negative length";

typedef struct {
    const uint8_t *data;
    Py_ssize_t end;
    Py_ssize_t pos; /* past `end` once a field overran it: every later read then fails, as in Python */
} Reader;

static void fail(const char *message)
{
    PyErr_SetString(batch_error, message);
}

/* As logq.batch.read_varint: up to 10 bytes (70 bits), zigzag-decoded. */
static int read_varint(Reader *r, i128 *out)
{
    u128 raw = 0;
    for (int shift = 0;; shift += 7) {
        if (r->pos >= r->end) {
            fail(TRUNCATED);
            return -1;
        }
        uint8_t byte = r->data[r->pos++];
        raw |= (u128)(byte & 0x7F) << shift;
        if (byte < 0x80)
            break;
        if (shift + 7 > 63) {
            fail(VARINT_TOO_LONG);
            return -1;
        }
    }
    *out = (i128)(raw >> 1) ^ -(i128)(raw & 1);
    return 0;
}

/* What read_field found. A field that overruns the data moves the reader past its end, as Python's
 * slice comes out short there: the next read, or the record's length check, then fails the record. */
enum { FIELD_NULL, FIELD_PRESENT, FIELD_OVERRUN };

/* A length-prefixed field (a varint length, -1 or less for null, then the bytes). */
static int read_field(Reader *r, const char **start, Py_ssize_t *size)
{
    i128 length;
    if (read_varint(r, &length) < 0)
        return -1;
    if (length < 0)
        return FIELD_NULL;
    if (length > r->end - r->pos) {
        r->pos = r->end + 1;
        return FIELD_OVERRUN;
    }
    *start = (const char *)r->data + r->pos;
    *size = (Py_ssize_t)length;
    r->pos += *size;
    return FIELD_PRESENT;
}

/* A key or value: bytes or None (None also for an overrun: that record fails before it is made). */
static PyObject *read_bytes(Reader *r)
{
    const char *start;
    Py_ssize_t size;
    int found = read_field(r, &start, &size);
    if (found < 0)
        return NULL;
    if (found == FIELD_PRESENT)
        return PyBytes_FromStringAndSize(start, size);
    return Py_NewRef(Py_None);
}

static PyObject *read_header(Reader *r)
{
    const char *start;
    Py_ssize_t size;
    int found = read_field(r, &start, &size);
    if (found < 0)
        return NULL;
    if (found == FIELD_NULL) {
        fail(NEGATIVE_NAME);
        return NULL;
    }
    PyObject *name = found == FIELD_PRESENT ? PyUnicode_DecodeUTF8(start, size, "replace") : Py_NewRef(Py_None);
    if (name == NULL)
        return NULL;
    PyObject *value = read_bytes(r);
    if (value == NULL) {
        Py_DECREF(name);
        return NULL;
    }
    PyObject *pair = PyTuple_Pack(2, name, value);
    Py_DECREF(name);
    Py_DECREF(value);
    if (pair != NULL)
        PyObject_GC_UnTrack(pair); /* (str, bytes or None): no cycle can pass through it */
    return pair;
}

static PyObject *read_headers(Reader *r)
{
    i128 count;
    if (read_varint(r, &count) < 0)
        return NULL;
    PyObject *list = PyList_New(0); /* not sized by count: a damaged count may claim billions */
    if (list == NULL)
        return NULL;
    for (i128 i = 0; i < count; i++) {
        PyObject *pair = read_header(r);
        if (pair == NULL || PyList_Append(list, pair) < 0) {
            Py_XDECREF(pair);
            Py_DECREF(list);
            return NULL;
        }
        Py_DECREF(pair);
    }
    PyObject *headers = PyList_AsTuple(list);
    Py_DECREF(list);
    if (headers != NULL)
        PyObject_GC_UnTrack(headers); /* of untracked pairs */
    return headers;
}

/* A Python int for base + delta, which may leave the int64 range (as Python's ints do). */
static PyObject *int_from_i128(i128 value)
{
    if (value >= INT64_MIN && value <= INT64_MAX)
        return PyLong_FromLongLong((long long)value);
    PyObject *high = PyLong_FromLongLong((long long)(value >> 64));
    PyObject *low = PyLong_FromUnsignedLongLong((unsigned long long)(uint64_t)value);
    PyObject *shift = PyLong_FromLong(64);
    PyObject *result = NULL;
    if (high != NULL && low != NULL && shift != NULL) {
        PyObject *shifted = PyNumber_Lshift(high, shift);
        if (shifted != NULL) {
            result = PyNumber_Add(shifted, low);
            Py_DECREF(shifted);
        }
    }
    Py_XDECREF(high);
    Py_XDECREF(low);
    Py_XDECREF(shift);
    return result;
}

static int as_int64(PyObject *obj, int64_t *out)
{
    long long value = PyLong_AsLongLong(obj);
    if (value == -1 && PyErr_Occurred())
        return -1;
    *out = value;
    return 0;
}

/* decode_records(records, count, base_offset, base_timestamp, timestamp_scale, queue, partition,
 *                from_offset, out): as records.py's python_decode_records. */
static PyObject *decode_records(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 9) {
        PyErr_Format(PyExc_TypeError, "decode_records() takes 9 arguments (%zd given)", nargs);
        return NULL;
    }
    if (record_type == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "logq.client._records.setup() was not called");
        return NULL;
    }
    int64_t count, base_offset, base_timestamp, timestamp_scale, from_offset;
    if (as_int64(args[1], &count) < 0 || as_int64(args[2], &base_offset) < 0 ||
        as_int64(args[3], &base_timestamp) < 0 || as_int64(args[4], &timestamp_scale) < 0 ||
        as_int64(args[7], &from_offset) < 0)
        return NULL;
    PyObject *queue = args[5], *partition = args[6], *out = args[8];
    if (!PyList_Check(out)) {
        PyErr_SetString(PyExc_TypeError, "decode_records() needs a list to append to");
        return NULL;
    }
    Py_buffer view;
    if (PyObject_GetBuffer(args[0], &view, PyBUF_SIMPLE) < 0)
        return NULL;
    Reader r = {(const uint8_t *)view.buf, view.len, 0};
    PyObject *no_headers = PyTuple_New(0);
    i128 last_timestamp = 0;
    PyObject *last_timestamp_obj = NULL; /* records of a batch often share a timestamp: share its int */
    if (no_headers == NULL)
        goto error;
    for (int64_t n = 0; n < count; n++) {
        i128 length, ts_delta, offset_delta;
        if (read_varint(&r, &length) < 0)
            goto error;
        i128 record_end = (i128)r.pos + length;
        if (record_end > r.end) {
            fail(TRUNCATED);
            goto error;
        }
        r.pos += 1; /* attributes: unused */
        if (read_varint(&r, &ts_delta) < 0 || read_varint(&r, &offset_delta) < 0)
            goto error;
        PyObject *key = NULL, *value = NULL, *headers = NULL;
        if ((key = read_bytes(&r)) == NULL || (value = read_bytes(&r)) == NULL)
            goto record_error;
        if (r.pos < r.end && r.data[r.pos] == 0) { /* no headers: the common case */
            headers = Py_NewRef(no_headers);
            r.pos++;
        } else if ((headers = read_headers(&r)) == NULL) {
            goto record_error;
        }
        if (r.pos != record_end) {
            fail(LENGTH_MISMATCH);
            goto record_error;
        }
        i128 offset = (i128)base_offset + offset_delta;
        if (base_offset < from_offset && offset < from_offset) { /* only a fetch's first batch */
            Py_DECREF(key);
            Py_DECREF(value);
            Py_DECREF(headers);
            continue;
        }
        i128 timestamp = (i128)base_timestamp + ts_delta * (i128)timestamp_scale;
        PyObject *offset_obj = int_from_i128(offset);
        if (offset_obj == NULL)
            goto record_error;
        if (last_timestamp_obj == NULL || timestamp != last_timestamp) {
            Py_XDECREF(last_timestamp_obj);
            last_timestamp_obj = int_from_i128(timestamp);
            last_timestamp = timestamp;
            if (last_timestamp_obj == NULL) {
                Py_DECREF(offset_obj);
                goto record_error;
            }
        }
        /* A ConsumerRecord as tuple.__new__(ConsumerRecord, (...)) makes it, without the argument tuple. */
        PyObject *record = record_type->tp_alloc(record_type, 7);
        if (record == NULL) {
            Py_DECREF(offset_obj);
            goto record_error;
        }
        PyTuple_SET_ITEM(record, 0, Py_NewRef(queue));
        PyTuple_SET_ITEM(record, 1, Py_NewRef(partition));
        PyTuple_SET_ITEM(record, 2, offset_obj);
        PyTuple_SET_ITEM(record, 3, Py_NewRef(last_timestamp_obj));
        PyTuple_SET_ITEM(record, 4, key);
        PyTuple_SET_ITEM(record, 5, value);
        PyTuple_SET_ITEM(record, 6, headers);
        /* Every field is a str, an int, bytes, None or an untracked tuple of those: the record can be in
         * no reference cycle. Untracked, the cyclic GC never walks it; it would walk every record still
         * alive at each collection, as it never untracks a tuple subclass by itself. */
        PyObject_GC_UnTrack(record);
        int appended = PyList_Append(out, record);
        Py_DECREF(record);
        if (appended < 0)
            goto error;
        continue;
    record_error:
        Py_XDECREF(key);
        Py_XDECREF(value);
        Py_XDECREF(headers);
        goto error;
    }
    Py_XDECREF(last_timestamp_obj);
    Py_DECREF(no_headers);
    PyBuffer_Release(&view);
    Py_RETURN_NONE;
error:
    Py_XDECREF(last_timestamp_obj);
    Py_XDECREF(no_headers);
    PyBuffer_Release(&view);
    return NULL;
}

static PyObject *setup(PyObject *Py_UNUSED(module), PyObject *args)
{
    PyObject *type, *error;
    if (!PyArg_ParseTuple(args, "O!O!:setup", &PyType_Type, &type, &PyType_Type, &error))
        return NULL;
    if (!PyType_IsSubtype((PyTypeObject *)type, &PyTuple_Type)) {
        PyErr_SetString(PyExc_TypeError, "setup() needs a tuple subclass as the record type");
        return NULL;
    }
    if (!PyType_IsSubtype((PyTypeObject *)error, (PyTypeObject *)PyExc_Exception)) {
        PyErr_SetString(PyExc_TypeError, "setup() needs an exception class as the error");
        return NULL;
    }
    Py_XSETREF(record_type, (PyTypeObject *)Py_NewRef(type));
    Py_XSETREF(batch_error, Py_NewRef(error));
    Py_RETURN_NONE;
}

static PyMethodDef module_methods[] = {
    {"decode_records", (PyCFunction)(void (*)(void))decode_records, METH_FASTCALL,
     "decode_records(records, count, base_offset, base_timestamp, timestamp_scale, queue, partition, "
     "from_offset, out): append the records at or past from_offset to out."},
    {"now_ms", now_ms, METH_NOARGS, "now_ms(): milliseconds since the epoch, as time.time_ns() // 1_000_000."},
    {"setup", setup, METH_VARARGS, "setup(record_type, error_type): what decode_records builds and raises."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "logq.client._records",
    .m_doc = "The compiled record codec (logq/client/records.py has the pure-Python one and the docs).",
    .m_size = -1,
    .m_methods = module_methods,
};

PyMODINIT_FUNC PyInit__records(void)
{
    if (PyType_Ready(&RecordsBufferType) < 0 || PyType_Ready(&FutureFieldsType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m == NULL)
        return NULL;
    if (PyModule_AddObjectRef(m, "RecordsBuffer", (PyObject *)&RecordsBufferType) < 0 ||
        PyModule_AddObjectRef(m, "FutureFields", (PyObject *)&FutureFieldsType) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
