// What every fuzz target shares: quiet logging, and a failed property reported as a crash libFuzzer keeps.
#pragma once

#include <spdlog/spdlog.h>

#include <cstdio>
#include <cstdlib>
#include <string>

namespace modkit::fuzz {

/// The core logs every bad plugin or cache it meets; a fuzzer meets millions.
inline void quiet() { spdlog::set_level(spdlog::level::off); }

/// A property that must hold for every input: when it does not, the input is a finding.
inline void require(bool ok, const std::string& what) {
  if (ok) return;
  std::fprintf(stderr, "fuzz property violated: %s\n", what.c_str());
  std::abort();
}

}  // namespace modkit::fuzz
