// Unit tests of worker.conf, the per-package lists and the autopkgtest argv built from them.
#include <doctest/doctest.h>
#include <autopkgtest_cloud/autopkgtest_argv.hpp>
#include <autopkgtest_cloud/error.hpp>
#include <autopkgtest_cloud/worker_config.hpp>

#include <algorithm>
#include <string>

using namespace apcloud;

namespace {

const char* conf = R"([amqp]
url = sqlite:///var/lib/apcloud/queue.db

[swift]
url = file:///var/lib/apcloud/results

[autopkgtest]
checkout_dir = /srv/autopkgtest
per_package_config_dir = /srv/config
releases = noble jammy
architectures = amd64 arm64
setup_command = /srv/setup-testbed $RELEASE $ARCHITECTURE
setup_command2 = echo ${HOSTNAME}-$UUID
extra_args = --no-auto-control --debug

[virt]
args = ssh -s nova -- --flavor $PACKAGESIZE --image adt/$RELEASE-$ARCHITECTURE --name $CLOUD-$TIMESTAMP
package_size_default = m1.small
package_size_big = m1.large
)";

std::string message_of(const std::string& text, const std::map<std::string, std::string>& env = {},
                       const std::map<std::string, std::string>& vars = {{"CLOUD", "lcy02"}}) {
    try {
        parse_worker_config(text, env, vars);
        return "";
    } catch (const ConfigError& e) {
        return e.what();
    }
}

RunContext run() {
    RunContext r;
    r.release = "noble";
    r.arch = "amd64";
    r.host_arch = "amd64";
    r.hostname = "worker1";
    r.uuid = "0f1e";
    r.timestamp = 1711026252;
    r.output_dir = "/tmp/out";
    return r;
}

}  // namespace

TEST_CASE("worker.conf: all sections") {
    auto c = parse_worker_config(conf, {}, {{"CLOUD", "lcy02"}});
    CHECK(c.broker_url == "sqlite:///var/lib/apcloud/queue.db");
    CHECK(c.store_url == "file:///var/lib/apcloud/results");
    CHECK(c.releases == std::vector<std::string>{"noble", "jammy"});
    CHECK(c.architectures == std::vector<std::string>{"amd64", "arm64"});
    CHECK(c.extra_args == std::vector<std::string>{"--no-auto-control", "--debug"});
    CHECK(c.autopkgtest_program() == "/srv/autopkgtest/runner/autopkgtest");
    CHECK(c.virt_args.front() == "ssh");
    CHECK_FALSE(c.virt_is_null());
    CHECK(c.testbed_failure_retries == 2);
    CHECK(c.log_limit_mb == 20);  // debci's limit, unless set
}

TEST_CASE("worker.conf: reference-style amqp and swift sections, secrets from the environment") {
    std::string text = conf;
    text.replace(text.find("url = sqlite"), std::string("url = sqlite:///var/lib/apcloud/queue.db").size(),
                 "host = rabbit.internal:5672\nuser = worker");
    text.replace(text.find("url = file"), std::string("url = file:///var/lib/apcloud/results").size(),
                 "auth_url = https://keystone.example.org/v3\nusername = swiftuser\nregion_name = x");
    auto c = parse_worker_config(text, {{"APCLOUD_AMQP_PASSWORD", "s3:cr@t"}, {"APCLOUD_SWIFT_KEY", "k"}},
                                 {{"CLOUD", "x"}});
    // Credentials travel beside the URL, never inside it (a URL gets printed).
    CHECK(c.broker_url == "amqp://rabbit.internal:5672/%2F?lease=600");
    CHECK(c.broker_credentials.user == "worker");
    CHECK(c.broker_credentials.password == "s3:cr@t");
    CHECK(c.broker_credentials.has_password);
    CHECK(c.store_url == "swift+https://keystone.example.org/v3");
    CHECK(c.store_credentials.user == "swiftuser");
    CHECK(c.store_credentials.key == "k");
    CHECK(c.store_credentials.region == "x");
}

TEST_CASE("worker.conf: the Keystone keys of [swift] are used, the environment fills the gaps") {
    std::string text = conf;
    text.replace(text.find("url = file"), std::string("url = file:///var/lib/apcloud/results").size(),
                 "auth_url = https://keystone.example.org/v3\nusername = swiftuser\npassword = pw\n"
                 "project_name = ci\nuser_domain_name = ldap\nregion_name = east");
    auto c = parse_worker_config(text, {{"OS_PROJECT_DOMAIN_NAME", "corp"}, {"OS_PROJECT_NAME", "ignored"}},
                                 {{"CLOUD", "x"}});
    CHECK(c.store_credentials.user == "swiftuser");
    CHECK(c.store_credentials.key == "pw");
    CHECK(c.store_credentials.project == "ci");
    CHECK(c.store_credentials.user_domain == "ldap");
    CHECK(c.store_credentials.project_domain == "corp");
    CHECK(c.store_credentials.region == "east");
    // Only the environment: OS_* count for Keystone v3 URLs.
    text.replace(text.find("username = swiftuser"), std::string("username = swiftuser\npassword = pw").size(),
                 "");
    auto e = parse_worker_config(text, {{"OS_USERNAME", "u"}, {"OS_PASSWORD", "p"}}, {{"CLOUD", "x"}});
    CHECK(e.store_credentials.user == "u");
    CHECK(e.store_credentials.key == "p");
    CHECK(e.store_credentials.project_domain == "Default");
}

TEST_CASE("worker.conf: errors name section, key and value") {
    CHECK(message_of(conf, {}, {}).find("[virt] args") != std::string::npos);
    CHECK(message_of(conf, {}, {}).find("unknown variable $CLOUD") != std::string::npos);
    std::string typo = std::string(conf) + "\n[autopkgtest]\nreleasse = x\n";
    CHECK(message_of(typo).rfind("worker.conf [autopkgtest] releasse: unknown key (expected ", 0) == 0);
    // A misspelt secret's value is not shown.
    std::string secret = std::string(conf) + "\n[amqp]\npasword = hunter2\n";
    CHECK(message_of(secret).find("[amqp] pasword: unknown key") != std::string::npos);
    CHECK(message_of(secret).find("hunter2") == std::string::npos);
    std::string badrel = conf;
    badrel.replace(badrel.find("noble jammy"), 11, "noble Jammy");
    CHECK(message_of(badrel).find("[autopkgtest] releases = 'Jammy'") != std::string::npos);
    std::string retries = std::string(conf) + "\n[autopkgtest]\ntestbed_failure_retries = many\n";
    CHECK(message_of(retries).find("testbed_failure_retries = 'many': must be a whole number") !=
          std::string::npos);
    CHECK(message_of("[bogus]\nx = 1\n").find("unknown section [bogus]") != std::string::npos);
    CHECK(message_of("no section line\n").find("syntax error on line 1") != std::string::npos);
    std::string nobroker = conf;
    nobroker.erase(nobroker.find("url = sqlite"),
                   std::string("url = sqlite:///var/lib/apcloud/queue.db").size());
    CHECK(message_of(nobroker).find("[amqp] url") != std::string::npos);
    std::string badbroker = conf;
    badbroker.replace(badbroker.find("sqlite://"), 9, "redis://");
    CHECK(message_of(badbroker).find("must be amqp://") != std::string::npos);
}

TEST_CASE("render_worker_config writes what parse_worker_config reads back") {
    auto c = parse_worker_config(conf, {}, {{"CLOUD", "x"}});
    const std::string text = render_worker_config(c);
    auto back = parse_worker_config(text, {}, {{"CLOUD", "x"}});
    CHECK(render_worker_config(back) == text);
    CHECK(back.broker_url == c.broker_url);
    CHECK(back.releases == c.releases);
    CHECK(back.setup_command == c.setup_command);
    CHECK(back.virt_args == c.virt_args);
    CHECK(back.extra_args == c.extra_args);
    CHECK(back.timeouts.test == c.timeouts.test);
    CHECK(back.long_timeouts.test == c.long_timeouts.test);
    CHECK(back.allow_local_sources == c.allow_local_sources);
    WorkerConfig unlimited = c;
    unlimited.log_limit_mb = 0;
    CHECK(parse_worker_config(render_worker_config(unlimited), {}, {{"CLOUD", "x"}}).log_limit_mb == 0);
    // Credentials and multi-line values survive too.
    WorkerConfig s = c;
    s.broker_credentials = {"worker", "pa:ss", true, ""};
    s.store_credentials.user = "u";
    s.store_credentials.key = "k";
    s.setup_command = "echo one\necho two";
    auto again = parse_worker_config(render_worker_config(s), {}, {{"CLOUD", "x"}});
    CHECK(again.broker_credentials.password == "pa:ss");
    CHECK(again.store_credentials.key == "k");
    CHECK(again.setup_command == "echo one\necho two");
    // What inih would read differently is refused rather than written wrong.
    s.setup_command = "true ; echo comment";
    CHECK_THROWS_AS(render_worker_config(s), ConfigError);
}

TEST_CASE("package lists: pkg[/arch[/release]], comments, wildcards") {
    auto l = PackageList::parse(
        "# big ones\nlibreoffice\nlinux-*/amd64\nchromium/*/noble  # only noble\n\n  gcc-1?/arm64/jammy\n");
    CHECK(l.patterns().size() == 4);
    CHECK(l.matches("libreoffice", "s390x", "focal"));
    CHECK(l.matches("linux-oem", "amd64", "noble"));
    CHECK_FALSE(l.matches("linux-oem", "arm64", "noble"));
    CHECK(l.matches("chromium", "arm64", "noble"));
    CHECK_FALSE(l.matches("chromium", "arm64", "jammy"));
    CHECK(l.matches("gcc-13", "arm64", "jammy"));
    CHECK_FALSE(l.matches("gcc-130", "arm64", "jammy"));
    CHECK_FALSE(l.matches("gedit", "amd64", "noble"));
    CHECK_FALSE(PackageList::parse("").matches("x", "y", "z"));
}

TEST_CASE("substitution") {
    std::map<std::string, std::string> v = {{"A", "1"}, {"BB", "2"}};
    CHECK(substitute("x$A-${BB}y $$ $ 5$", v, "t") == "x1-2y $$ $ 5$");
    CHECK_THROWS_AS(substitute("$NOPE", v, "t"), ConfigError);
}

TEST_CASE("argv in SPEC order for a plain request") {
    auto c = parse_worker_config(conf, {}, {{"CLOUD", "lcy02"}});
    TestRequest r = parse_request(
        "gedit\n{\"triggers\": [\"glib2.0/2.20-1\", \"gtk+3.0/3.24-1\"], "
        "\"env\": [\"A=1 2\"], \"testname\": \"smoke\"}");
    auto argv = autopkgtest_argv(c, r, run(), PackageLists{}, {{"CLOUD", "lcy02"}});
    std::vector<std::string> expect = {"/srv/autopkgtest/runner/autopkgtest",
                                       "--output-dir",
                                       "/tmp/out",
                                       "--timeout-copy=900",
                                       "--no-auto-control",
                                       "--debug",
                                       "--setup-commands",
                                       "/srv/setup-testbed noble amd64",
                                       "--setup-commands",
                                       "echo worker1-0f1e",
                                       "--apt-pocket=proposed=src:glib2.0,src:gtk+3.0",
                                       "--apt-upgrade",
                                       "gedit",
                                       "--timeout-short=300",
                                       "--timeout-install=3000",
                                       "--timeout-test=10000",
                                       "--timeout-build=20000",
                                       "--env=A=1 2",
                                       "--env=ADT_TEST_TRIGGERS=glib2.0/2.20-1 gtk+3.0/3.24-1",
                                       "--testname=smoke",
                                       "--",
                                       "ssh",
                                       "-s",
                                       "nova",
                                       "--",
                                       "--flavor",
                                       "m1.small",
                                       "--image",
                                       "adt/noble-amd64",
                                       "--name",
                                       "lcy02-1711026252"};
    CHECK(argv == expect);
}

TEST_CASE("argv: ppas, all-proposed, reference, git targets, big and long packages, null runner") {
    auto c = parse_worker_config(conf, {}, {{"CLOUD", "c"}});
    PackageLists lists;
    lists.big_packages = PackageList::parse("libreoffice\n");
    lists.long_tests = PackageList::parse("gcc-13/amd64\n");
    auto has = [](const std::vector<std::string>& v, const std::string& s) {
        return std::find(v.begin(), v.end(), s) != v.end();
    };
    auto a =
        autopkgtest_argv(c,
                         parse_request("systemd\n{\"ppas\": [\"pitti/systemd\"], \"all-proposed\": \"1\", "
                                       "\"triggers\": [\"systemd/1\"]}"),
                         run(), lists, {{"CLOUD", "c"}});
    CHECK(has(a, "--add-apt-source=ppa:pitti/systemd"));
    CHECK(has(a, "--apt-pocket=proposed"));
    auto ref = autopkgtest_argv(c, parse_request("gedit\n{\"triggers\": [\"migration-reference/0\"]}"), run(),
                                lists, {{"CLOUD", "c"}});
    CHECK(std::none_of(ref.begin(), ref.end(),
                       [](const std::string& s) { return s.rfind("--apt-pocket", 0) == 0; }));
    CHECK(has(ref, "--apt-upgrade"));
    CHECK(has(ref, "--env=ADT_TEST_TRIGGERS=migration-reference/0"));
    auto tg = autopkgtest_argv(
        c, parse_request("foo\n{\"test-git\": \"https://salsa.debian.org/a/b.git debian/latest\"}"), run(),
        lists, {{"CLOUD", "c"}});
    auto nb = std::find(tg.begin(), tg.end(), "--no-built-binaries");
    REQUIRE(nb != tg.end());
    CHECK(*(nb + 1) == "https://salsa.debian.org/a/b.git#debian/latest");
    auto bg = autopkgtest_argv(
        c, parse_request("foo\n{\"build-git\": \"https://github.com/a/b.git#refs/pull/1/head\"}"), run(),
        lists, {{"CLOUD", "c"}});
    CHECK(has(bg, "https://github.com/a/b.git#refs/pull/1/head"));
    CHECK_FALSE(has(bg, "foo"));
    auto big = autopkgtest_argv(c, parse_request("libreoffice"), run(), lists, {{"CLOUD", "c"}});
    CHECK(has(big, "m1.large"));
    CHECK(has(big, "--timeout-test=40000"));
    auto lng = autopkgtest_argv(c, parse_request("gcc-13"), run(), lists, {{"CLOUD", "c"}});
    CHECK(has(lng, "--timeout-test=40000"));
    CHECK(has(lng, "m1.small"));

    std::string nullconf = conf;
    nullconf.replace(nullconf.find("args = ssh"),
                     nullconf.find('\n', nullconf.find("args = ssh")) - nullconf.find("args = ssh"),
                     "args = null");
    auto n = parse_worker_config(nullconf);
    CHECK(n.virt_is_null());
    auto na = autopkgtest_argv(n, parse_request("gedit\n{\"triggers\": [\"glib2.0/1\"]}"), run(), lists);
    CHECK_FALSE(has(na, "--apt-upgrade"));
    CHECK(std::none_of(na.begin(), na.end(),
                       [](const std::string& s) { return s.rfind("--apt-pocket", 0) == 0; }));
    CHECK(na.back() == "null");
    CHECK(*(na.end() - 2) == "--");
}

TEST_CASE("argv: request data stays in single argv words (no shell)") {
    auto c = parse_worker_config(conf, {}, {{"CLOUD", "c"}});
    auto r = parse_request("gedit\n{\"env\": [\"X=$(rm -rf /); `id` && echo | tee\"]}");
    auto a = autopkgtest_argv(c, r, run(), PackageLists{}, {{"CLOUD", "c"}});
    CHECK(std::find(a.begin(), a.end(), "--env=X=$(rm -rf /); `id` && echo | tee") != a.end());
}

TEST_CASE("AMQP leases: appended by default, and renewal ticks must fit three times in one") {
    std::string amqp = conf;
    amqp.replace(amqp.find("sqlite:///var/lib/apcloud/queue.db"),
                 std::string("sqlite:///var/lib/apcloud/queue.db").size(), "amqp://w:p@rabbit/%2F");
    CHECK(parse_worker_config(amqp, {}, {{"CLOUD", "c"}}).broker_url == "amqp://w:p@rabbit/%2F?lease=600");
    CHECK(parse_worker_config(amqp + "\n[amqp]\nlease = 120\n", {}, {{"CLOUD", "c"}}).broker_url ==
          "amqp://w:p@rabbit/%2F?lease=120");
    std::string short_lease = amqp;
    short_lease.replace(short_lease.find("%2F"), 3, "%2F?lease=20");
    CHECK(message_of(short_lease)
              .find("[autopkgtest] status_interval = '10': must be at most a third of the broker "
                    "lease (20 s)") != std::string::npos);
    CHECK(message_of(short_lease + "\n[autopkgtest]\nstatus_interval = 5\n").empty());
}

TEST_CASE("render_worker_config: long word lists over continuation lines, values it cannot write refused (fuzzing)") {
    auto c = parse_worker_config(conf, {}, {{"CLOUD", "x"}});
    c.architectures.clear();
    for (int i = 0; i < 60; ++i) c.architectures.push_back("arch" + std::to_string(i));
    const std::string text = render_worker_config(c);
    for (std::size_t start = 0, end; start < text.size(); start = end + 1) {
        end = std::min(text.find('\n', start), text.size());
        CHECK(end - start < 190);  // inih reads lines of fewer than 200 bytes
    }
    CHECK(parse_worker_config(text, {}, {{"CLOUD", "x"}}).architectures == c.architectures);
    auto comment = c;
    comment.virt_args = {";x", "null"};  // read from `args :;x null`: " = ;x" would be a comment
    CHECK_THROWS_WITH_AS(render_worker_config(comment), doctest::Contains("inline ';' comment"), ConfigError);
    auto longword = c;
    longword.work_dir = "/" + std::string(300, 'w');
    CHECK_THROWS_WITH_AS(render_worker_config(longword), doctest::Contains("longer than"), ConfigError);
}
