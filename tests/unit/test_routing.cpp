// Unit tests of queue names and routing (SPEC.md section 2).
#include <autopkgtest_cloud/error.hpp>
#include <autopkgtest_cloud/routing.hpp>
#include <doctest/doctest.h>

using namespace apcloud;

TEST_CASE("queue names") {
    CHECK(queue_name("noble", "amd64") == "debci-noble-amd64");
    CHECK(queue_name("noble", "amd64", QueueContext::huge) == "debci-huge-noble-amd64");
    CHECK(queue_name("noble", "ppc64el", QueueContext::ppa) == "debci-ppa-noble-ppc64el");
    CHECK(queue_name("trusty", "armhf", QueueContext::upstream) == "debci-upstream-trusty-armhf");
    CHECK_THROWS_AS(queue_name("No-ble", "amd64"), ValidationError);
    CHECK_THROWS_AS(queue_name("noble", "amd-64"), ValidationError);
    CHECK_THROWS_AS(queue_name("", "amd64"), ValidationError);
}

TEST_CASE("queue names parse back") {
    for (auto ctx : {QueueContext::plain, QueueContext::huge, QueueContext::ppa, QueueContext::upstream}) {
        auto q = parse_queue_name(queue_name("jammy", "s390x", ctx));
        CHECK(q.context == ctx);
        CHECK(q.release == "jammy");
        CHECK(q.arch == "s390x");
    }
    for (auto bad : {"debci-noble", "debci--amd64", "debci-bogus-noble-amd64", "other-noble-amd64",
                     "debci-plain-noble-amd64", "debci-huge-noble-amd64-x", "debci-noble-", "debci-"})
        CHECK_THROWS_AS_MESSAGE(parse_queue_name(bad), ParseError, bad);
}

TEST_CASE("choice of queue: upstream, then ppa, then huge, then plain") {
    TestRequest r;
    r.package = "gedit";
    CHECK(queue_for(r, "noble", "amd64") == "debci-noble-amd64");
    CHECK(queue_for(r, "noble", "amd64", true) == "debci-huge-noble-amd64");
    r.ppas = {"pitti/systemd"};
    CHECK(queue_for(r, "noble", "amd64", true) == "debci-ppa-noble-amd64");
    r.build_git = "https://github.com/a/b.git#refs/pull/1/head";
    CHECK(queue_for(r, "noble", "amd64", true) == "debci-upstream-noble-amd64");
    r.build_git.reset();
    r.ppas.clear();
    r.test_git = "https://github.com/a/b.git";
    CHECK(choose_context(r) == QueueContext::upstream);
}

TEST_CASE("context names") {
    CHECK(parse_context("") == QueueContext::plain);
    CHECK(parse_context("huge") == QueueContext::huge);
    CHECK_THROWS_AS(parse_context("HUGE"), ValidationError);
    CHECK(context_name(QueueContext::upstream) == "upstream");
}

TEST_CASE("all queues of releases and architectures, bulk last") {
    auto q = queue_names({"noble", "jammy"}, {"amd64"});
    CHECK(q == std::vector<std::string>{"debci-noble-amd64", "debci-jammy-amd64", "debci-ppa-noble-amd64",
                                        "debci-ppa-jammy-amd64", "debci-upstream-noble-amd64",
                                        "debci-upstream-jammy-amd64", "debci-huge-noble-amd64",
                                        "debci-huge-jammy-amd64"});
    CHECK(queue_names({}, {"amd64"}).empty());
    CHECK_THROWS_AS(queue_names({"Bad"}, {"amd64"}), ValidationError);
}
