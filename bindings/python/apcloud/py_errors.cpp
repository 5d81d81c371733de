// The exception hierarchy, registered once: apcloud.Error and its subclasses.
#include <autopkgtest_cloud/error.hpp>

#include "bindings.hpp"

namespace py = pybind11;

namespace apcloud::python {

namespace {
PyObject* new_class(py::module_& m, const char* name, PyObject* base, const char* doc) {
    std::string qualified = std::string("apcloud.") + name;
    PyObject* cls = PyErr_NewExceptionWithDoc(qualified.c_str(), doc, base, nullptr);
    if (!cls) throw py::error_already_set();
    m.add_object(name, py::handle(cls));
    return cls;
}
}  // namespace

void register_errors(py::module_& m) {
    static PyObject* error = new_class(m, "Error", PyExc_Exception, "Base of every apcloud error.");
    static PyObject* parse =
        new_class(m, "ParseError", error, "Malformed input (bad JSON, not UTF-8, corrupt archive).");
    static PyObject* validation =
        new_class(m, "ValidationError", error, "A field has a forbidden value; `field` and `value` name it.");
    static PyObject* archive =
        new_class(m, "ArchiveError", parse, "A corrupt, truncated or oversized archive.");
    static PyObject* not_found =
        new_class(m, "NotFound", error, "The object, container, queue or file does not exist.");
    static PyObject* config = new_class(m, "ConfigError", error, "Invalid configuration.");
    static PyObject* store = new_class(m, "StoreError", error, "A result store operation failed.");
    static PyObject* broker = new_class(m, "BrokerError", error, "A broker operation failed.");
    static PyObject* http = new_class(m, "HttpError", error, "An HTTP exchange failed.");
    static PyObject* integrity =
        new_class(m, "IntegrityError", error, "Downloaded data does not match its published checksum.");

    // Also an OSError, so `except OSError` catches failed file operations as in Python itself.
    static PyObject* system = [&] {
        py::tuple bases = py::make_tuple(py::handle(error), py::handle(PyExc_OSError));
        PyObject* cls = PyErr_NewExceptionWithDoc(
            "apcloud.SystemError", "An operating system call failed; errno and filename name it.",
            bases.ptr(), nullptr);
        if (!cls) throw py::error_already_set();
        m.add_object("SystemError", py::handle(cls));
        return cls;
    }();

    py::register_exception_translator([](std::exception_ptr p) {
        auto raise = [](PyObject* cls, const std::exception& e) { PyErr_SetString(cls, e.what()); };
        try {
            if (p) std::rethrow_exception(p);
        } catch (const ValidationError& e) {
            py::object exc = py::reinterpret_borrow<py::object>(validation)(e.what());
            exc.attr("field") = e.field();
            exc.attr("value") = py::bytes(e.value()).attr("decode")("utf-8", "replace");
            PyErr_SetObject(validation, exc.ptr());
        } catch (const ArchiveError& e) {
            raise(archive, e);
        } catch (const ParseError& e) {
            raise(parse, e);
        } catch (const NotFound& e) {
            raise(not_found, e);
        } catch (const ConfigError& e) {
            raise(config, e);
        } catch (const StoreError& e) {
            raise(store, e);
        } catch (const BrokerError& e) {
            raise(broker, e);
        } catch (const HttpError& e) {
            raise(http, e);
        } catch (const IntegrityError& e) {
            raise(integrity, e);
        } catch (const SystemError& e) {
            py::object exc = py::reinterpret_borrow<py::object>(system)(e.error_code(), e.what());
            exc.attr("filename") = py::bytes(e.path()).attr("decode")("utf-8", "replace");
            PyErr_SetObject(system, exc.ptr());
        } catch (const Error& e) {
            raise(error, e);
        }
    });
}

}  // namespace apcloud::python
