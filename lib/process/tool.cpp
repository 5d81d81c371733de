// Exceptions of a program's body mapped to exit statuses, once for every tool.
#include "autopkgtest_cloud/tool.hpp"

#include <exception>
#include <iostream>
#include <new>

#include "autopkgtest_cloud/error.hpp"

namespace apcloud {

namespace {

int report(std::string_view program, const char* what, int status) {
    std::cerr << program << ": " << what << std::endl;
    return status;
}

}  // namespace

int run_main(std::string_view program, const std::function<int()>& body) noexcept {
    try {
        return body();
    } catch (const ValidationError& e) {
        return report(program, e.what(), exit_bad_input);
    } catch (const ParseError& e) {
        return report(program, e.what(), exit_bad_input);
    } catch (const NotFound& e) {
        return report(program, e.what(), exit_not_found);
    } catch (const ConfigError& e) {
        return report(program, e.what(), exit_bad_config);
    } catch (const std::bad_alloc&) {
        return report(program, "out of memory", exit_error);
    } catch (const std::exception& e) {
        return report(program, e.what(), exit_error);
    } catch (...) {
        return report(program, "unknown error", exit_error);
    }
}

}  // namespace apcloud
