// What both executables of the CLI (modkit and modkit-torch) do alike: exit codes, failures, errors under
// --json, and the validator of counts.
#pragma once

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <cstring>
#include <iostream>
#include <stdexcept>
#include <string>

namespace modkit::cli {

/// Exit codes of every subcommand (DESIGN.md "CLI").
enum ExitCode : int {
  kExitOk = 0,       ///< success
  kExitProblem = 1,  ///< a plugin, recipe or model problem
  kExitUsage = 2,    ///< a usage error (bad arguments)
};

/// A failure that ends the command: printed as "modkit: <message>" on stderr; under --json also
/// as {"error": message, "exit_code": code} on stdout, with `details` (an object) merged in.
class Failure : public std::runtime_error {
 public:
  Failure(int code, const std::string& message, nlohmann::json details = nlohmann::json::object())
      : std::runtime_error(message), code_(code), details_(std::move(details)) {}
  int code() const noexcept { return code_; }
  const nlohmann::json& details() const noexcept { return details_; }

 private:
  int code_;
  nlohmann::json details_;
};

/// True when --json is among the arguments; read from argv, so that it holds even when the
/// arguments failed to parse.
inline bool wants_json(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--") == 0) return false;
    if (std::strcmp(argv[i], "--json") == 0) return true;
  }
  return false;
}

/// Reports an error that ends the command: "modkit: <message>" on stderr, and under --json also
/// {"error": message, "exit_code": code, ...details} on stdout, so stdout is always one JSON value.
inline void report_error(const std::string& message, int code, bool json,
                         const nlohmann::json& details = nlohmann::json::object()) {
  std::cerr << "modkit: " << message << "\n";
  if (!json) return;
  nlohmann::json j = details.is_object() ? details : nlohmann::json::object();
  j["error"] = message;
  j["exit_code"] = code;
  std::cout << j.dump(2) << "\n";
}

/// A whole number of at least 1 (CLI::PositiveNumber accepts 0.5 and prints its range as a
/// 309-digit number).
inline CLI::Validator positive_count() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        size_t used = 0;
        long long n = 0;
        try {
          n = std::stoll(text, &used);
        } catch (const std::exception&) {
          used = 0;
        }
        if (used != text.size() || used == 0 || n < 1) return "expected a whole number of at least 1, found '" + text + "'";
        return "";
      },
      "N>=1");
}

}  // namespace modkit::cli
