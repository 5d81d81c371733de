// The tools' settings: client.conf's [client] keys as APCLOUD_* variables under the environment, where
// the file is, and a command line option over a setting.
#include <doctest/doctest.h>

#include <string>

#include "autopkgtest_cloud/error.hpp"
#include "autopkgtest_cloud/tool.hpp"

using namespace apcloud;

namespace {

std::string config_error(const std::string& text, bool private_file = true) {
    try {
        with_client_config({}, text, "client.conf", private_file);
    } catch (const ConfigError& e) {
        return e.what();
    }
    return "no error";
}

}  // namespace

TEST_CASE("client.conf: [client] keys stand for APCLOUD_* variables; the environment wins") {
    const std::string text =
        "[client]\n"
        "amqp_url = amqp://alice@broker.example/ci\n"
        "architectures = amd64 arm64\n"
        "api_key_file = /home/alice/.config/autopkgtest-cloud/api-key\n"
        "web_url = https://autopkgtest.example\n";
    auto env = with_client_config({{"APCLOUD_WEB_URL", "http://127.0.0.1:8080"}, {"USER", "alice"}}, text,
                                  "client.conf", false);
    CHECK(env.at("APCLOUD_AMQP_URL") == "amqp://alice@broker.example/ci");
    CHECK(env.at("APCLOUD_ARCHITECTURES") == "amd64 arm64");
    CHECK(env.at("APCLOUD_API_KEY_FILE") == "/home/alice/.config/autopkgtest-cloud/api-key");
    CHECK(env.at("APCLOUD_WEB_URL") == "http://127.0.0.1:8080");  // set in the environment: kept
    CHECK(env.at("USER") == "alice");
    CHECK(env.size() == 5);
    CHECK(with_client_config({}, "", "client.conf", false).empty());
    CHECK(client_config_keys().size() == 14);
}

TEST_CASE("client.conf: unknown sections and keys are refused by name, without their values") {
    CHECK(config_error("[client]\namqp_pasword = hunter2\n").find("client.conf [client] amqp_pasword: unknown key") ==
          0);
    CHECK(config_error("[client]\namqp_pasword = hunter2\n").find("hunter2") == std::string::npos);
    CHECK(config_error("[amqp]\nurl = amqp://x\n").find("unknown section [amqp]") != std::string::npos);
    CHECK(config_error("[client\nx\n").find("syntax error on line 1") != std::string::npos);
}

TEST_CASE("client.conf: secrets only in a file nobody else may read") {
    for (const char* key : {"amqp_password", "swift_key", "api_key"}) {
        const std::string text = std::string("[client]\n") + key + " = s3cret\n";
        const std::string e = config_error(text, false);
        CHECK(e.find(std::string("client.conf [client] ") + key + ": a secret in a file others may read") == 0);
        CHECK(e.find("s3cret") == std::string::npos);
        auto env = with_client_config({}, text, "client.conf", true);
        CHECK(env.size() == 1);
        CHECK(env.begin()->second == "s3cret");
    }
}

TEST_CASE("client.conf: a URL with a password is a secret too") {
    const std::string text = "[client]\namqp_url = amqp://alice:pw@broker.example/\n";
    CHECK(config_error(text, false).find("[client] amqp_url: a secret in a file others may read") !=
          std::string::npos);
    CHECK(config_error(text, false).find("pw@") == std::string::npos);
    CHECK(with_client_config({}, text, "client.conf", true).at("APCLOUD_AMQP_URL") ==
          "amqp://alice:pw@broker.example/");
    CHECK(config_error("[client]\nweb_url = not a url\n", false) == "no error");  // refused where it is used
}

TEST_CASE("client.conf is found through APCLOUD_CONFIG, then XDG_CONFIG_HOME, then HOME") {
    CHECK(client_config_path({{"APCLOUD_CONFIG", "/etc/ci.conf"}, {"XDG_CONFIG_HOME", "/x"}, {"HOME", "/h"}}) ==
          "/etc/ci.conf");
    CHECK(client_config_path({{"XDG_CONFIG_HOME", "/x"}, {"HOME", "/h"}}) == "/x/autopkgtest-cloud/client.conf");
    CHECK(client_config_path({{"APCLOUD_CONFIG", ""}, {"HOME", "/h"}}) ==
          "/h/.config/autopkgtest-cloud/client.conf");
    CHECK(client_config_path({}).empty());
}

TEST_CASE("option_or_setting: the option, else the setting, else an error naming both") {
    const Environment settings = {{"APCLOUD_AMQP_URL", "amqp://b"}, {"APCLOUD_STORE_URL", ""}};
    CHECK(option_or_setting("amqp://given", settings, "APCLOUD_AMQP_URL", "--broker") == "amqp://given");
    CHECK(option_or_setting("", settings, "APCLOUD_AMQP_URL", "--broker") == "amqp://b");
    CHECK(option_or_setting("", settings, "APCLOUD_STORE_URL", "--store", false).empty());
    try {
        option_or_setting("", settings, "APCLOUD_STORE_URL", "--store");
        FAIL("no error");
    } catch (const ValidationError& e) {
        CHECK(e.field() == "--store");
        CHECK(std::string(e.what()).find("set APCLOUD_STORE_URL (or store_url in client.conf)") !=
              std::string::npos);
    }
}
