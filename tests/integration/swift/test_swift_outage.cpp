// Swift unavailable for a while (scripts/swift-pause/-resume): uploads retry and succeed, or fail clearly
// past the budget.
#include <doctest/doctest.h>

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <mutex>
#include <thread>

#include "autopkgtest_cloud/error.hpp"
#include "autopkgtest_cloud/log.hpp"
#include "autopkgtest_cloud/store.hpp"
#include "swift_test_util.hpp"

using namespace apcloud;
using swift_test::env;
using Clock = std::chrono::steady_clock;

namespace {

std::string script(const char* name) {
    return env("APCLOUD_TEST_SCRIPTS") + "/" + name;
}

std::string swift_dir() {
    const std::string dir = env("APCLOUD_SWIFT_DIR");
    REQUIRE_MESSAGE(!dir.empty(), "APCLOUD_SWIFT_DIR (from swift-start's env) is needed to pause the proxy");
    return dir;
}

void pause_proxy(const std::vector<std::string>& extra = {}) {
    std::vector<std::string> argv = {script("swift-pause"), swift_dir()};
    argv.insert(argv.end(), extra.begin(), extra.end());
    REQUIRE(swift_test::run(argv).status == 0);
}

// Resumes the proxy when it goes out of scope, whatever happened.
struct ResumeLater {
    std::thread thread;
    explicit ResumeLater(std::chrono::milliseconds delay) {
        thread = std::thread([delay, dir = swift_dir()] {
            std::this_thread::sleep_for(delay);
            swift_test::run({script("swift-resume"), dir});
        });
    }
    ~ResumeLater() { thread.join(); }
};

}  // namespace

TEST_CASE("a put during a short outage retries and succeeds after the proxy is back") {
    // Budget: waits of 0.25 0.5 1 2 2 2 2 2 s, about 12 s, plenty for a
    // restart of the proxy (about 2 s after the resume).
    auto store = open_test_store(swift_test::store_url("retries=8&backoff=0.25&backoff_max=2&timeout=5"));
    const std::string c = swift_test::unique_name("h3-outage");
    store->ensure_container(c, {});  // logged in before the outage

    SUBCASE("proxy stopped: connections refused") {
        pause_proxy();
        const auto start = Clock::now();
        {
            ResumeLater resume(std::chrono::milliseconds(2000));
            auto info = store->put(c, "noble/amd64/g/gedit/20240321_130412_3fa9c@/result.tar", "payload");
            CHECK(info.bytes == 7);
        }
        CHECK(Clock::now() - start >= std::chrono::milliseconds(2000));
        CHECK(store->get(c, "noble/amd64/g/gedit/20240321_130412_3fa9c@/result.tar")->data == "payload");
    }
    SUBCASE("proxy frozen: connections hang until the client's timeout") {
        auto impatient =
            open_test_store(swift_test::store_url("retries=8&backoff=0.25&backoff_max=2&timeout=1"));
        impatient->ensure_container(c, {});
        pause_proxy({"--freeze"});
        const auto start = Clock::now();
        {
            ResumeLater resume(std::chrono::milliseconds(2500));
            impatient->put(c, "frozen", "thawed");
        }
        CHECK(Clock::now() - start >= std::chrono::milliseconds(2500));
        CHECK(impatient->get(c, "frozen")->data == "thawed");
    }
    SUBCASE("put_file: the file is sent again, whole, by the retry after the outage") {
        char tmpl[] = "/tmp/apcloud-outage-XXXXXX";
        REQUIRE(mkdtemp(tmpl));
        const std::string path = std::string(tmpl) + "/artifacts.tar.gz";
        std::string data(2 * 1024 * 1024 + 5, '\0');
        for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>((i * 131) >> 2);
        std::ofstream(path, std::ios::binary) << data;
        pause_proxy();
        {
            ResumeLater resume(std::chrono::milliseconds(2000));
            auto info = store->put_file(c, "run@/artifacts.tar.gz", path);
            CHECK(info.bytes == data.size());
        }
        auto got = store->get(c, "run@/artifacts.tar.gz");
        REQUIRE(got);
        CHECK((got->data == data));
        std::remove(path.c_str());
        rmdir(tmpl);
    }
    SUBCASE("reads and listings retry too") {
        store->put(c, "r", "read me");
        pause_proxy();
        {
            ResumeLater resume(std::chrono::milliseconds(2000));
            auto o = store->get(c, "r");
            REQUIRE(o);
            CHECK(o->data == "read me");
        }
        pause_proxy();
        {
            ResumeLater resume(std::chrono::milliseconds(1500));
            CHECK(store->list(c, {}).size() >= 1);
        }
        pause_proxy();
        {
            // A streamed read retries until its headers are in.
            ResumeLater resume(std::chrono::milliseconds(1500));
            auto reader = store->open_object(c, "r");
            REQUIRE(reader);
            std::string chunk;
            REQUIRE(reader->read(chunk));
            CHECK(chunk == "read me");
        }
        pause_proxy();
        {
            ResumeLater resume(std::chrono::milliseconds(1500));
            const auto containers = store->list_containers();
            CHECK(std::find(containers.begin(), containers.end(), c) != containers.end());
        }
    }
}

TEST_CASE("a streamed read that stalls midway is a StoreError naming the object, never retried") {
    auto store = open_test_store(swift_test::store_url("retries=8&backoff=0.25&backoff_max=1&timeout=1"));
    const std::string c = swift_test::unique_name("h3-stall");
    store->ensure_container(c, {});
    // Far more than the client's read-ahead and the sockets' buffers.
    std::string data(32 * 1024 * 1024, '\0');
    for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>((i * 131) >> 3);
    store->put(c, "run@/artifacts.tar.gz", data);
    auto reader = store->open_object(c, "run@/artifacts.tar.gz");
    REQUIRE(reader);
    std::string chunk, got;
    REQUIRE(reader->read(chunk));
    got += chunk;
    pause_proxy({"--freeze"});
    {
        ResumeLater resume(std::chrono::milliseconds(4000));
        const auto start = Clock::now();
        try {
            while (reader->read(chunk)) got += chunk;
            FAIL("no exception");
        } catch (const StoreError& e) {
            const std::string msg = e.what();
            MESSAGE(msg);
            CHECK(msg.find("GET object 'run@/artifacts.tar.gz' in container") == 0);
            CHECK(msg.find(c) != std::string::npos);
            CHECK(msg.find("the transfer broke off after " + std::to_string(got.size()) + " bytes") !=
                  std::string::npos);
            CHECK(msg.find("timed out") != std::string::npos);
            CHECK(msg.find("AUTH_tk") == std::string::npos);
        }
        // Failed by the client's timeout, before the proxy came back.
        CHECK(Clock::now() - start < std::chrono::milliseconds(3900));
    }
    CHECK(got.size() < data.size());
    CHECK((got == data.substr(0, got.size())));
    // A new reader reads it all.
    reader = store->open_object(c, "run@/artifacts.tar.gz");
    REQUIRE(reader);
    got.clear();
    while (reader->read(chunk)) got += chunk;
    CHECK((got == data));
}

TEST_CASE("an outage longer than the retry budget is a clear StoreError") {
    auto store = open_test_store(swift_test::store_url("retries=2&backoff=0.2"));
    const std::string c = swift_test::unique_name("h3-down");
    store->ensure_container(c, {});
    pause_proxy();
    ResumeLater resume(std::chrono::milliseconds(4000));
    const auto start = Clock::now();
    try {
        store->put(c, "noble/amd64/g/gedit/20240321_130412_3fa9c@/log.gz", "lost?");
        FAIL("no exception");
    } catch (const StoreError& e) {
        const std::string msg = e.what();
        MESSAGE(msg);
        CHECK(msg.find("PUT object") == 0);
        CHECK(msg.find("noble/amd64/g/gedit/20240321_130412_3fa9c@/log.gz") != std::string::npos);
        CHECK(msg.find(c) != std::string::npos);
        CHECK(msg.find("gave up after 3 tries") != std::string::npos);
        CHECK(msg.find("AUTH_tk") == std::string::npos);  // never a token
    }
    const auto took = Clock::now() - start;
    CHECK(took >= std::chrono::milliseconds(600));  // waited 0.2 + 0.4 s
    CHECK(took < std::chrono::milliseconds(4000));
}

TEST_CASE("retries are logged with the status or error and the wait, never a token or key") {
    struct Captured {
        std::mutex mutex;
        std::vector<std::string> swift;
    } captured;
    set_log_sink([&](const LogRecord& r) {
        std::lock_guard<std::mutex> lock(captured.mutex);
        if (r.component == "swift" && r.level == LogLevel::warning) captured.swift.emplace_back(r.message);
    });
    auto store = open_test_store(swift_test::store_url("retries=8&backoff=0.25&backoff_max=1&timeout=5"));
    const std::string c = swift_test::unique_name("h3-logged");
    store->ensure_container(c, {});
    pause_proxy();
    {
        ResumeLater resume(std::chrono::milliseconds(1500));
        store->put(c, "logged", "payload");
    }
    set_log_sink({});
    REQUIRE_FALSE(captured.swift.empty());
    const std::string& first = captured.swift.front();
    MESSAGE(first);
    CHECK(first.find("PUT object 'logged' in container") == 0);
    CHECK(first.find("; retry 1 of 8 in 0.25 s") != std::string::npos);
    for (const auto& m : captured.swift) {
        CHECK(m.find("AUTH_tk") == std::string::npos);
        CHECK(m.find(env("APCLOUD_SWIFT_KEY")) == std::string::npos);
    }
}
