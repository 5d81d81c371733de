// Entry point of the `apcloud._apcloud` extension module.
#include "bindings.hpp"

PYBIND11_MODULE(_apcloud, m) {
    m.doc() = "libautopkgtest-cloud: test requests, queue routing, store layout and result files.";
    apcloud::python::register_errors(m);
    apcloud::python::register_request(m);
    apcloud::python::register_layout(m);
    apcloud::python::register_results(m);
    apcloud::python::register_store(m);
    apcloud::python::register_gating(m);
}
