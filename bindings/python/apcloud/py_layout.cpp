// Python bindings of layout.hpp.
#include <pybind11/stl.h>
#include <autopkgtest_cloud/layout.hpp>

#include "bindings.hpp"

namespace py = pybind11;
using namespace pybind11::literals;

namespace apcloud::python {

void register_layout(py::module_& m) {
    m.def("srcpkg_prefix", &srcpkg_prefix, "package"_a,
          "First four letters for names starting with 'lib', else the first letter.");
    m.def(
        "container_name",
        [](const std::string& release, const std::vector<std::string>& ppas, bool priv) {
            return container_name(release, ppas, priv);
        },
        "release"_a, "ppas"_a = std::vector<std::string>{}, "private"_a = false,
        "'autopkgtest-RELEASE[-LPUSER-PPA]' for the last PPA, 'private-' prefixed for private runs.");
    m.def(
        "make_run_id", [](std::int64_t t, const std::string& body) { return make_run_id(t, body); },
        "unix_time"_a, "body"_a,
        "'%Y%m%d_%H%M%S_<5 hex of sha1(body)>@' for a run started at unix_time (UTC).");

    py::class_<RunId>(m, "RunId", "A parsed run id.")
        .def_readonly("unix_time", &RunId::unix_time, "Start of the run, seconds since the epoch.")
        .def_readonly("hash", &RunId::hash, "The 5 hex digits, or None for the old form.")
        .def(
            "__iter__", [](const RunId& r) { return py::iter(py::make_tuple(r.unix_time, r.hash)); },
            "Unpacks as (unix_time, hash).")
        .def("__repr__", [](const RunId& r) {
            return "RunId(unix_time=" + std::to_string(r.unix_time) +
                   ", hash=" + (r.hash ? "'" + *r.hash + "'" : "None") + ")";
        });
    m.def("parse_run_id", &parse_run_id, "run_id"_a,
          "Parses 'YYYYMMDD_HHMMSS_xxxxx@' or the old 'YYYYMMDD_HHMMSS@'; raises ParseError.");
    m.def("result_dir", &result_dir, "release"_a, "arch"_a, "package"_a, "run_id"_a,
          "'RELEASE/ARCH/PREFIX/PACKAGE/RUN_ID', the directory of a run's objects.");
    m.def("package_prefix", &package_prefix, "release"_a, "arch"_a, "package"_a,
          "'RELEASE/ARCH/PREFIX/PACKAGE/', the listing prefix of a package's runs.");
}

}  // namespace apcloud::python
