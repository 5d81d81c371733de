// Registration functions of the Python module, one per area (private header).
#pragma once

#include <pybind11/pybind11.h>

namespace apcloud::python {

void register_errors(pybind11::module_& m);
void register_request(pybind11::module_& m);
void register_layout(pybind11::module_& m);
void register_results(pybind11::module_& m);
void register_store(pybind11::module_& m);
void register_gating(pybind11::module_& m);

}  // namespace apcloud::python
