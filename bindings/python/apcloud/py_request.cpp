// Python bindings of request.hpp and routing.hpp.
#include <pybind11/operators.h>
#include <pybind11/stl.h>
#include <autopkgtest_cloud/request.hpp>
#include <autopkgtest_cloud/routing.hpp>

#include "bindings.hpp"

namespace py = pybind11;
using namespace pybind11::literals;

namespace apcloud::python {

namespace {

void register_test_request(py::module_& m) {
    py::class_<TestRequest>(
        m, "TestRequest",
        "A test request: a source package and its parameters. Attribute names are the JSON\n"
        "keys with '_' for '-'. Lists default to empty, optional strings to None.")
        .def(
            py::init([](std::string package, std::vector<std::string> triggers, std::vector<std::string> ppas,
                        std::vector<std::string> env, std::optional<std::string> test_git,
                        std::optional<std::string> build_git, bool all_proposed,
                        std::optional<std::string> testname, std::optional<std::string> submit_time,
                        std::optional<std::string> requester, std::optional<std::string> uuid,
                        std::vector<std::string> readable_by, std::optional<std::string> swiftuser) {
                TestRequest r;
                r.package = std::move(package);
                r.triggers = std::move(triggers);
                r.ppas = std::move(ppas);
                r.env = std::move(env);
                r.test_git = std::move(test_git);
                r.build_git = std::move(build_git);
                r.all_proposed = all_proposed;
                r.testname = std::move(testname);
                r.submit_time = std::move(submit_time);
                r.requester = std::move(requester);
                r.uuid = std::move(uuid);
                r.readable_by = std::move(readable_by);
                r.swiftuser = std::move(swiftuser);
                return r;
            }),
            "package"_a, py::kw_only(), "triggers"_a = std::vector<std::string>{},
            "ppas"_a = std::vector<std::string>{}, "env"_a = std::vector<std::string>{},
            "test_git"_a = py::none(), "build_git"_a = py::none(), "all_proposed"_a = false,
            "testname"_a = py::none(), "submit_time"_a = py::none(), "requester"_a = py::none(),
            "uuid"_a = py::none(), "readable_by"_a = std::vector<std::string>{}, "swiftuser"_a = py::none(),
            "Builds a request; call validate() or to_message() to use it.")
        .def_readwrite("package", &TestRequest::package, "Source package to test.")
        .def_readwrite("triggers", &TestRequest::triggers, "List of 'src/version' that caused the run.")
        .def_readwrite("ppas", &TestRequest::ppas,
                       "PPAs '[user:token@]lpuser/name[:FPR]'; the last names the container.")
        .def_readwrite("env", &TestRequest::env, "List of 'NAME=value' passed to autopkgtest.")
        .def_readwrite("test_git", &TestRequest::test_git, "'URL' or 'URL branch' to run the tests from.")
        .def_readwrite("build_git", &TestRequest::build_git, "'URL' or 'URL#ref' to build and test.")
        .def_readwrite("test_bzr", &TestRequest::test_bzr, "Always refused by validation (unsupported).")
        .def_readwrite("all_proposed", &TestRequest::all_proposed,
                       "Use all of -proposed, not just the triggers.")
        .def_readwrite("testname", &TestRequest::testname, "Run only this test.")
        .def_readwrite("submit_time", &TestRequest::submit_time, "'%Y-%m-%d %H:%M:%S' UTC, optional %z.")
        .def_readwrite("requester", &TestRequest::requester, "Who asked (metadata).")
        .def_readwrite("uuid", &TestRequest::uuid, "Request id (metadata).")
        .def_readwrite("readable_by", &TestRequest::readable_by, "Users who may read a private result.")
        .def_readwrite("swiftuser", &TestRequest::swiftuser, "Owner of a private result container.")
        .def("to_stored_message", &TestRequest::to_stored_message,
             "to_message() without the PPAs' credentials: what is stored beside a result.")
        .def("to_message", &TestRequest::to_message,
             "The queue message: package, newline, JSON with sorted keys (as json.dumps(sort_keys=True)).")
        .def(
            "validate",
            [](const TestRequest& r, bool allow_local) {
                ValidationOptions o;
                o.allow_local_sources = allow_local;
                validate(r, o);
            },
            "allow_local_sources"_a = false, "Raises ValidationError naming the field and value at fault.")
        .def("is_private", &TestRequest::is_private, "True when a PPA carries credentials.")
        .def("is_reference", &TestRequest::is_reference, "True for a migration-reference/0 run.")
        .def(py::self == py::self)
        .def("__repr__", [](const TestRequest& r) { return "<TestRequest " + r.to_message() + ">"; });
}

void register_parse(py::module_& m) {
    m.def(
        "parse_request",
        [](const std::string& body, bool allow_local, std::size_t max_body) {
            ValidationOptions o;
            o.allow_local_sources = allow_local;
            o.max_body_bytes = max_body;
            return parse_request(body, o);
        },
        "body"_a, "allow_local_sources"_a = false, "max_body_bytes"_a = ValidationOptions{}.max_body_bytes,
        "Parses and validates a queue message (str or bytes): 'src', 'src\\n{json}' or 'src {json}'.\n"
        "Raises ParseError for malformed input, ValidationError for a forbidden value.");
    m.def("is_valid_package_name", &is_valid_package_name, "name"_a, "True for ^[a-z0-9][a-z0-9.+-]+$.");
    m.def("is_valid_version", &is_valid_version, "version"_a, "True for ^[A-Za-z0-9.+:~-]+$.");
}

void register_routing(py::module_& m) {
    py::class_<QueueName>(m, "QueueName", "A queue name taken apart.")
        .def_property_readonly(
            "context", [](const QueueName& q) { return std::string(context_name(q.context)); },
            "'' (plain), 'huge', 'ppa' or 'upstream'.")
        .def_readonly("release", &QueueName::release, "Release name.")
        .def_readonly("arch", &QueueName::arch, "Architecture name.")
        .def(py::self == py::self)
        .def(
            "__iter__",
            [](const QueueName& q) {
                return py::iter(py::make_tuple(std::string(context_name(q.context)), q.release, q.arch));
            },
            "Unpacks as (context, release, arch).")
        .def("__repr__", [](const QueueName& q) {
            return "QueueName(context='" + std::string(context_name(q.context)) + "', release='" + q.release +
                   "', arch='" + q.arch + "')";
        });

    m.def(
        "queue_name",
        [](const std::string& release, const std::string& arch, const std::string& context) {
            return queue_name(release, arch, parse_context(context));
        },
        "release"_a, "arch"_a, "context"_a = "",
        "'debci-RELEASE-ARCH' or 'debci-CONTEXT-RELEASE-ARCH' (context: '', 'huge', 'ppa', 'upstream').");
    m.def("parse_queue_name", &parse_queue_name, "name"_a, "Parses a queue name; raises ParseError.");
    m.def("queue_for", &queue_for, "request"_a, "release"_a, "arch"_a, "huge"_a = false,
          "The queue a request goes to: upstream (test-git/build-git), ppa, huge (bulk) or plain.");
}

}  // namespace

void register_request(py::module_& m) {
    register_test_request(m);
    register_parse(m);
    register_routing(m);
}

}  // namespace apcloud::python
