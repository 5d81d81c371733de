// Python bindings of result.hpp and exit_codes.hpp.
#include <pybind11/stl.h>
#include <autopkgtest_cloud/exit_codes.hpp>
#include <autopkgtest_cloud/result.hpp>

#include "bindings.hpp"

namespace py = pybind11;
using namespace pybind11::literals;

namespace apcloud::python {

void register_results(py::module_& m) {
    m.def(
        "pack_results",
        [](const std::string& output_dir, int exitcode, std::uint64_t duration,
           std::optional<std::string> requester, std::optional<std::string> package,
           std::optional<std::int64_t> mtime, std::optional<std::string> request) {
            PackOptions o;
            o.exitcode = exitcode;
            o.duration = duration;
            o.requester = std::move(requester);
            o.package = std::move(package);
            o.request = std::move(request);
            o.mtime = mtime;
            ResultFiles f;
            {
                py::gil_scoped_release release;
                f = pack_results(output_dir, o);
            }
            py::dict out;
            out["result.tar"] = py::bytes(f.result_tar);
            out["log.gz"] = py::bytes(f.log_gz);
            out["artifacts.tar.gz"] = py::bytes(f.artifacts_tar_gz);
            return out;
        },
        "output_dir"_a, "exitcode"_a, "duration"_a, "requester"_a = py::none(), "package"_a = py::none(),
        "mtime"_a = py::none(), "request"_a = py::none(),
        "Packs an autopkgtest output directory into {'result.tar', 'log.gz', 'artifacts.tar.gz': bytes}.\n"
        "package names the tested source for 'PACKAGE unknown' when autopkgtest wrote no version;\n"
        "request (TestRequest.to_stored_message()) is stored as member 'request'.");

    py::class_<Result>(m, "Result", "What a result.tar says about a run.")
        .def_readonly("exitcode", &Result::exitcode, "autopkgtest's exit code.")
        .def_readonly("package", &Result::package, "Tested source package, or None.")
        .def_readonly("version", &Result::version, "Tested version, or None.")
        .def_readonly("duration", &Result::duration, "Seconds, or None.")
        .def_readonly("request", &Result::request, "The request run (queue message without credentials), or None.")
        .def_readonly("testinfo_json", &Result::testinfo_json, "testinfo.json text, or None.")
        .def_readonly("custom_environment", &Result::custom_environment,
                      "testinfo.json's custom_environment.")
        .def_readonly("triggers", &Result::triggers, "Triggers from ADT_TEST_TRIGGERS, or None when absent.")
        .def_readonly("requester", &Result::requester, "Who asked, or None.")
        .def_readonly("summary", &Result::summary, "autopkgtest's summary, or None.")
        .def_readonly("testbed_packages", &Result::testbed_packages, "The testbed's package list, or None.")
        .def_property_readonly(
            "outcome", [](const Result& r) { return std::string(outcome_name(outcome(r.exitcode))); },
            "'pass', 'fail', 'neutral', 'tmpfail', 'error' or 'denylisted'.")
        .def("__repr__", [](const Result& r) {
            return "<Result exitcode=" + std::to_string(r.exitcode) + " " + r.package.value_or("?") + " " +
                   r.version.value_or("?") + ">";
        });

    m.def(
        "parse_result_tar",
        [](const py::bytes& data, std::size_t max_archive_bytes, std::size_t max_member_bytes) {
            std::string_view view = data;
            ArchiveLimits limits;
            limits.max_archive_bytes = max_archive_bytes;
            limits.max_member_bytes = max_member_bytes;
            py::gil_scoped_release release;
            return parse_result_tar(view, limits);
        },
        "data"_a, "max_archive_bytes"_a = ArchiveLimits{}.max_archive_bytes,
        "max_member_bytes"_a = ArchiveLimits{}.max_member_bytes,
        "Parses a result.tar (bytes); raises ArchiveError or ParseError.");
    m.def(
        "gzip_compress",
        [](const py::bytes& data) { return py::bytes(gzip_compress(std::string_view(data))); }, "data"_a,
        "gzip -9 of data.");
    m.def(
        "outcome", [](int code) { return std::string(outcome_name(outcome(code))); }, "exitcode"_a,
        "'pass', 'fail', 'neutral', 'tmpfail', 'error' or 'denylisted' (SPEC.md section 4).");
    m.def(
        "britney_status", [](int code) { return std::string(britney_status(code)); }, "exitcode"_a,
        "'PASS', 'NEUTRAL' or 'FAIL'.");
    m.def(
        "github_state", [](int code) { return std::string(github_state(code)); }, "exitcode"_a,
        "'success', 'failure' or 'error'.");
}

}  // namespace apcloud::python
