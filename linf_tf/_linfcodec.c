/* Thin CPython binding of the C codec core: validates buffers, releases the GIL, calls the core,
 * and turns every non-zero status into linf_tf._linfcodec.Error(message, code). No algorithm here. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <string.h>

#include "linf_codec.h"

static PyObject *CodecError;

/* Error(message, code, stripe): stripe is the failing stripe's index, or -1. */
static PyObject *raise_stripe_status(linf_status status, int64_t stripe)
{
    PyObject *args;
    if (stripe >= 0)
        args = Py_BuildValue("(NiL)", PyUnicode_FromFormat("stripe %lld: %s", (long long)stripe, linf_error_message(status)),
                             (int)status, (long long)stripe);
    else
        args = Py_BuildValue("(siL)", linf_error_message(status), (int)status, (long long)-1);
    if (args) {
        PyErr_SetObject(CodecError, args);
        Py_DECREF(args);
    }
    return NULL;
}

static PyObject *raise_status(linf_status status) { return raise_stripe_status(status, -1); }

static int check_itemsize(const Py_buffer *view, uint32_t bit_depth)
{
    const Py_ssize_t expected = bit_depth > 8 ? 2 : 1;
    if (view->itemsize != expected) {
        PyErr_Format(PyExc_ValueError, "pixel buffer has %zd-byte items; bit depth %u needs %zd-byte items",
                     view->itemsize, bit_depth, expected);
        return 0;
    }
    return 1;
}

static PyObject *py_encode(PyObject *self, PyObject *args)
{
    Py_buffer pixels;
    Py_buffer reconstruction = {0};
    PyObject *reconstruction_object = Py_None;
    linf_image_desc desc;
    linf_options options;
    memset(&desc, 0, sizeof desc);
    memset(&options, 0, sizeof options);
    int is_signed = 0;
    /* Optional: a writable buffer for the reconstruction (or None), then the format version
     * (0 = the newest). */
    if (!PyArg_ParseTuple(args, "y*IIIIIpII|OI:encode", &pixels, &desc.width, &desc.height, &desc.channels,
                          &desc.bit_depth, &desc.tau, &is_signed, &options.stripe_height, &options.threads,
                          &reconstruction_object, &options.format_version))
        return NULL;
    if (reconstruction_object != Py_None &&
        PyObject_GetBuffer(reconstruction_object, &reconstruction, PyBUF_WRITABLE) != 0) {
        PyBuffer_Release(&pixels);
        return NULL;
    }
    desc.is_signed = is_signed ? 1u : 0u;
    PyObject *result = NULL;
    const size_t capacity = linf_max_encoded_size_ex(&desc, options.stripe_height);
    if (capacity == 0) {
        PyErr_SetString(PyExc_ValueError, "invalid image description: check shape, bit depth and tau");
        goto done;
    }
    if (!check_itemsize(&pixels, desc.bit_depth)) goto done;
    if (reconstruction.buf && !check_itemsize(&reconstruction, desc.bit_depth)) goto done;
    result = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)capacity);
    if (!result) goto done;
    size_t written = 0;
    linf_status status;
    Py_BEGIN_ALLOW_THREADS
    status = linf_encode_ex(&desc, pixels.buf, (size_t)pixels.len, (uint8_t *)PyBytes_AS_STRING(result), capacity,
                            &written, reconstruction.buf, (size_t)reconstruction.len, &options);
    Py_END_ALLOW_THREADS
    if (status != LINF_OK) {
        Py_CLEAR(result);
        raise_status(status);
        goto done;
    }
    _PyBytes_Resize(&result, (Py_ssize_t)written);
done:
    PyBuffer_Release(&pixels);
    if (reconstruction.buf) PyBuffer_Release(&reconstruction);
    return result;
}

static PyObject *py_read_header(PyObject *self, PyObject *args)
{
    Py_buffer data;
    if (!PyArg_ParseTuple(args, "y*:read_header", &data)) return NULL;
    linf_header h;
    const linf_status status = linf_read_header(data.buf, (size_t)data.len, &h);
    PyBuffer_Release(&data);
    if (status != LINF_OK) return raise_status(status);
    return Py_BuildValue("(IIIIIIIKnIII)", h.desc.width, h.desc.height, h.desc.channels, h.desc.bit_depth, h.desc.tau,
                         h.format_version, h.coding_mode, (unsigned long long)h.payload_bytes,
                         (Py_ssize_t)h.header_bytes, h.desc.is_signed, h.stripe_height, h.stripe_count);
}

static PyObject *py_decode(PyObject *self, PyObject *args)
{
    Py_buffer data, out;
    unsigned long long max_samples;
    unsigned int threads = 1;
    if (!PyArg_ParseTuple(args, "y*w*K|I:decode", &data, &out, &max_samples, &threads)) return NULL;
    linf_options options;
    memset(&options, 0, sizeof options);
    options.max_samples = (uint64_t)max_samples;
    options.threads = threads;
    int64_t failed_stripe = -1;
    linf_header h;
    linf_status status = linf_read_header(data.buf, (size_t)data.len, &h);
    if (status == LINF_OK && !check_itemsize(&out, h.desc.bit_depth)) {
        PyBuffer_Release(&data);
        PyBuffer_Release(&out);
        return NULL;
    }
    if (status == LINF_OK) {
        Py_BEGIN_ALLOW_THREADS
        status = linf_decode_ex(data.buf, (size_t)data.len, out.buf, (size_t)out.len, &options, &failed_stripe);
        Py_END_ALLOW_THREADS
    }
    PyBuffer_Release(&data);
    PyBuffer_Release(&out);
    if (status != LINF_OK) return raise_stripe_status(status, failed_stripe);
    Py_RETURN_NONE;
}

static PyObject *py_encode_levelmap(PyObject *self, PyObject *args)
{
    Py_buffer map;
    unsigned int width, height, levels;
    if (!PyArg_ParseTuple(args, "y*III:encode_levelmap", &map, &width, &height, &levels)) return NULL;
    PyObject *result = NULL;
    if ((uint64_t)width * height != (uint64_t)map.len) {
        PyErr_SetString(PyExc_ValueError, "level map buffer size is not width * height");
        goto done;
    }
    const size_t capacity = linf_levelmap_max_bytes(width, height);
    if (capacity == 0) {
        PyErr_SetString(PyExc_ValueError, "level map too large");
        goto done;
    }
    result = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)capacity);
    if (!result) goto done;
    size_t written = 0;
    linf_status status;
    Py_BEGIN_ALLOW_THREADS
    status = linf_encode_levelmap(map.buf, width, height, levels, (uint8_t *)PyBytes_AS_STRING(result), capacity,
                                  &written);
    Py_END_ALLOW_THREADS
    if (status != LINF_OK) {
        Py_CLEAR(result);
        raise_status(status);
        goto done;
    }
    _PyBytes_Resize(&result, (Py_ssize_t)written);
done:
    PyBuffer_Release(&map);
    return result;
}

static PyObject *py_decode_levelmap(PyObject *self, PyObject *args)
{
    Py_buffer data, out;
    unsigned int width, height, levels;
    if (!PyArg_ParseTuple(args, "y*w*III:decode_levelmap", &data, &out, &width, &height, &levels)) return NULL;
    linf_status status = LINF_ERR_BUFFER_TOO_SMALL;
    if ((uint64_t)width * height == (uint64_t)out.len) {
        Py_BEGIN_ALLOW_THREADS
        status = linf_decode_levelmap(data.buf, (size_t)data.len, width, height, levels, out.buf);
        Py_END_ALLOW_THREADS
    }
    PyBuffer_Release(&data);
    PyBuffer_Release(&out);
    if (status != LINF_OK) return raise_status(status);
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"encode", py_encode, METH_VARARGS,
     "encode(pixels, width, height, channels, bit_depth, tau, is_signed, stripe_height, threads\n"
     "       [, reconstruction[, format_version]]) -> bytes\n\n"
     "Compress interleaved HxWxC samples (1-byte items for bit_depth <= 8, else 2-byte; two's\n"
     "complement when is_signed); stripe_height 0 = one stripe. If not None, the writable buffer\n"
     "reconstruction receives what decoding the stream will return. format_version 0 = the newest,\n"
     "4 = multichannel images in format 4 (faster, larger). Releases the GIL."},
    {"read_header", py_read_header, METH_VARARGS,
     "read_header(data) -> (width, height, channels, bit_depth, tau, version, mode, payload_bytes, header_bytes,\n"
     "                      is_signed, stripe_height, stripe_count)"},
    {"decode", py_decode, METH_VARARGS,
     "decode(data, out, max_samples[, threads]) -> None\n\nDecode into the writable C-contiguous buffer out\n"
     "(data must be exactly one stream). Errors carry (message, code, stripe index or -1)."},
    {"encode_levelmap", py_encode_levelmap, METH_VARARGS,
     "encode_levelmap(map, width, height, levels) -> bytes\n\nContext-code a uint8 level map (format 5)."},
    {"decode_levelmap", py_decode_levelmap, METH_VARARGS,
     "decode_levelmap(data, out, width, height, levels) -> None\n\nDecode a level map into the writable out."},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "_linfcodec",
    .m_doc = "Binding of the linf near-lossless codec core.",
    .m_size = -1,
    .m_methods = methods,
};

PyMODINIT_FUNC PyInit__linfcodec(void)
{
    PyObject *m = PyModule_Create(&module);
    if (!m) return NULL;
    CodecError = PyErr_NewException("linf_tf._linfcodec.Error", PyExc_ValueError, NULL);
    if (!CodecError || PyModule_AddObjectRef(m, "Error", CodecError) < 0) goto fail;
    if (PyModule_AddIntConstant(m, "MAX_CHANNELS", LINF_MAX_CHANNELS) < 0 ||
        PyModule_AddIntConstant(m, "MAX_DIMENSION", LINF_MAX_DIMENSION) < 0 ||
        PyModule_AddObject(m, "MAX_SAMPLES", PyLong_FromUnsignedLongLong(LINF_MAX_SAMPLES)) < 0 ||
        PyModule_AddIntConstant(m, "FORMAT_VERSION", LINF_FORMAT_VERSION) < 0 ||
        PyModule_AddIntConstant(m, "HEADER_BYTES", LINF_HEADER_BYTES) < 0 ||
        PyModule_AddIntConstant(m, "OLDEST_FORMAT_VERSION", LINF_OLDEST_FORMAT_VERSION) < 0 ||
        PyModule_AddIntConstant(m, "MAX_THREADS", LINF_MAX_THREADS) < 0 ||
        PyModule_AddIntConstant(m, "LEVELMAP_MAX_LEVELS", LINF_LEVELMAP_MAX_LEVELS) < 0 ||
        PyModule_AddStringConstant(m, "CORE_VERSION", linf_version()) < 0)
        goto fail;
    return m;
fail:
    Py_DECREF(m);
    return NULL;
}
