// Python bindings of store.hpp: the Store interface and the factory.
#include <pybind11/stl.h>
#include <autopkgtest_cloud/credentials.hpp>
#include <autopkgtest_cloud/store.hpp>

#include "bindings.hpp"

namespace py = pybind11;
using namespace pybind11::literals;

namespace apcloud::python {

void register_store(py::module_& m) {
    py::class_<Store>(m, "Store", "A result store (Swift semantics): containers of objects.")
        .def(
            "ensure_container",
            [](Store& s, const std::string& container, bool public_read, const std::string& read_user) {
                py::gil_scoped_release r;
                s.ensure_container(container, ContainerAcl{public_read, read_user});
            },
            "container"_a, "public"_a = true, "read_user"_a = "",
            "Creates the container if needed and sets its read ACL.")
        .def(
            "put",
            [](Store& s, const std::string& container, const std::string& name, const py::bytes& data,
               const std::string& content_type, std::optional<std::string> content_encoding) {
                std::string_view view = data;
                PutOptions o{content_type, std::move(content_encoding)};
                py::gil_scoped_release r;
                s.put(container, name, view, o);
            },
            "container"_a, "name"_a, "data"_a, "content_type"_a = "application/octet-stream",
            "content_encoding"_a = py::none(), "Stores an object atomically, replacing any previous one.")
        .def(
            "get",
            [](Store& s, const std::string& container, const std::string& name) -> py::object {
                std::optional<Object> o;
                {
                    py::gil_scoped_release r;
                    o = s.get(container, name);
                }
                if (!o) return py::none();
                return py::bytes(o->data);
            },
            "container"_a, "name"_a, "The object's content, or None when it does not exist.")
        .def(
            "list",
            [](Store& s, const std::string& container, const std::string& prefix,
               std::optional<char> delimiter, const std::string& marker, std::size_t limit) {
                ListOptions o;
                o.prefix = prefix;
                o.delimiter = delimiter;
                o.marker = marker;
                o.limit = limit;
                std::vector<ListEntry> entries;
                {
                    py::gil_scoped_release r;
                    entries = s.list(container, o);
                }
                std::vector<std::string> names;
                for (auto& e : entries) names.push_back(std::move(e.name));
                return names;
            },
            "container"_a, "prefix"_a = "", "delimiter"_a = py::none(), "marker"_a = "",
            "limit"_a = ListOptions::max_list_limit,
            "One page of the listing: object names, and subdir names ending with the delimiter.");

    m.def(
        "open_store", [](const std::string& url) { return open_store(url, {}, process_environment()); },
        "url"_a,
        "Opens a store: file:///path, swift+http(s)://.../auth/v1.0 or .../v3, or a public "
        "http(s)://host/v1/AUTH_x URL. Credentials come from the URL or the environment "
        "(APCLOUD_SWIFT_USER/KEY, OS_* for Keystone v3).");
}

}  // namespace apcloud::python
