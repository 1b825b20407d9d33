// What plugins log through the host table: at the core's level, or at a level of their own on stderr.
#include "child_process.hpp"

#include <modkit/core/host.hpp>
#include <modkit/core/logging.hpp>
#include <modkit/modkit.h>

#include <doctest/doctest.h>

TEST_CASE("with a plugin log level, plugin lines reach stderr while the core stays quiet") {
  const modkit::test::ChildResult r = modkit::test::in_child([] {
    modkit::log_to_stderr();
    modkit::set_log_level(modkit::LogLevel::Off);
    modkit::set_plugin_log_level(modkit::LogLevel::Info);
    const modkit_host* host = modkit::default_host();
    host->log(host, MODKIT_LOG_INFO, "GPTQModifier", "layers.0.fc1: loss 0.25");
    host->log(host, MODKIT_LOG_DEBUG, "GPTQModifier", "a detail");
    host->log(host, MODKIT_LOG_WARN, nullptr, "no source");
  });
  CHECK(r.code == 0);
  CHECK(r.err == "GPTQModifier: layers.0.fc1: loss 0.25\nplugin: no source\n");
}

TEST_CASE("without one, plugin lines follow the core's level") {
  const modkit::test::ChildResult r = modkit::test::in_child([] {
    modkit::log_to_stderr();
    modkit::set_log_level(modkit::LogLevel::Off);
    const modkit_host* host = modkit::default_host();
    host->log(host, MODKIT_LOG_WARN, "GPTQModifier", "hidden");
  });
  CHECK(r.code == 0);
  CHECK(r.err.empty());
}
