// A host table whose log service records what plugins report, for asserting callback sequences.
#pragma once

#include <modkit/core/host.hpp>
#include <modkit/core/state.hpp>

#include <string>
#include <vector>

/// Collects every message plugins log through their state's host.
class RecordingHost {
 public:
  RecordingHost() {
    modkit::init_host_table(table_);
    table_.context = this;
    table_.log = [](const modkit_host* host, int32_t, const char*, const char* message) {
      static_cast<RecordingHost*>(host->context)->lines_.emplace_back(message);
    };
  }
  RecordingHost(const RecordingHost&) = delete;
  RecordingHost& operator=(const RecordingHost&) = delete;

  modkit::State state() const {
    modkit::State s;
    s.host = &table_;
    return s;
  }
  const std::vector<std::string>& lines() const { return lines_; }
  void clear() { lines_.clear(); }

 private:
  modkit_host table_{};
  std::vector<std::string> lines_;
};
