// Errors and logging of the host table: what plugins call to report and to log.
#include <modkit/core/host.hpp>

#include <spdlog/spdlog.h>

#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <new>
#include <string>

namespace modkit::detail {
extern std::atomic<int> g_plugin_log_level;  // logging.cpp: set_plugin_log_level
}

struct modkit_error {
  modkit_status code;
  std::string message;
};

namespace modkit {
namespace {

// Returned when allocating an error fails; never freed.
modkit_error g_out_of_memory{MODKIT_ERROR_OUT_OF_MEMORY, "out of memory"};

modkit_error* error_new(const modkit_host*, modkit_status code, const char* message) {
  return make_error(code, message != nullptr ? message : "");
}
const char* error_message(const modkit_error* e) { return e != nullptr ? e->message.c_str() : ""; }
modkit_status error_code(const modkit_error* e) { return e != nullptr ? e->code : MODKIT_OK; }
void error_free(modkit_error* e) {
  if (e != &g_out_of_memory) delete e;
}

void log(const modkit_host*, int32_t level, const char* source, const char* message) {
  auto lvl = level <= MODKIT_LOG_TRACE  ? spdlog::level::trace
             : level == MODKIT_LOG_DEBUG ? spdlog::level::debug
             : level == MODKIT_LOG_INFO  ? spdlog::level::info
             : level == MODKIT_LOG_WARN  ? spdlog::level::warn
                                         : spdlog::level::err;
  const int plugin_level = detail::g_plugin_log_level.load();
  if (plugin_level < 0) {
    spdlog::log(lvl, "[{}] {}", source != nullptr ? source : "plugin", message != nullptr ? message : "");
    return;
  }
  // a CLI chose the plugins' own level: their lines go to stderr as "Source: message", clearing a
  // progress line on a terminal first (the next progress update redraws it)
  if (lvl < plugin_level) return;
  static const bool terminal = ::isatty(STDERR_FILENO) == 1;
  const std::string line = std::string(terminal ? "\r\033[K" : "") + (source != nullptr ? source : "plugin") + ": " +
                           (message != nullptr ? message : "") + "\n";
  std::fwrite(line.data(), 1, line.size(), stderr);
}

modkit_host make_default_host() {
  modkit_host h{};
  init_host_table(h);
  return h;
}

}  // namespace

void init_host_table(modkit_host& table) {
  table.struct_size = sizeof(modkit_host);
  table.abi_major = MODKIT_ABI_MAJOR;
  table.abi_minor = MODKIT_ABI_MINOR;
  table.error_new = &error_new;
  table.error_message = &error_message;
  table.error_code = &error_code;
  table.error_free = &error_free;
  table.log = &log;
}

const modkit_host* default_host() {
  static const modkit_host host = make_default_host();
  return &host;
}

modkit_error* make_error(modkit_status code, const std::string& message) {
  try {
    return new modkit_error{code, message};
  } catch (const std::bad_alloc&) {
    return &g_out_of_memory;
  }
}

std::string take_error_message(modkit_error* error) {
  if (error == nullptr) return "";
  std::string m = error->message;
  error_free(error);
  return m;
}

const char* status_name(modkit_status code) {
  switch (code) {
    case MODKIT_OK: return "ok";
    case MODKIT_ERROR_INVALID_ARGUMENT: return "invalid argument";
    case MODKIT_ERROR_NOT_FOUND: return "not found";
    case MODKIT_ERROR_FAILED_PRECONDITION: return "failed precondition";
    case MODKIT_ERROR_UNSUPPORTED: return "unsupported";
    case MODKIT_ERROR_OUT_OF_MEMORY: return "out of memory";
    case MODKIT_ERROR_INTERNAL: return "internal error";
  }
  return "unknown status";
}

}  // namespace modkit
