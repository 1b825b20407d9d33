// Load records: stage names, messages and JSON form.
#include <modkit/core/load_record.hpp>

namespace modkit {

const char* to_string(LoadStage stage) {
  switch (stage) {
    case LoadStage::Scan: return "scan";
    case LoadStage::Open: return "open";
    case LoadStage::Resolve: return "resolve";
    case LoadStage::Validate: return "validate";
    case LoadStage::Shadowed: return "shadowed";
    case LoadStage::Loaded: return "loaded";
    case LoadStage::Isolated: return "isolated";
  }
  return "unknown";
}

const char* to_string(RecordSource source) {
  switch (source) {
    case RecordSource::Scan: return "scan";
    case RecordSource::Cache: return "cache";
    case RecordSource::Memory: return "memory";
  }
  return "unknown";
}

LoadRecord LoadRecord::make(std::string name, std::string file, LoadStage stage, std::string reason,
                            bool experimental) {
  LoadRecord r;
  r.name = std::move(name);
  r.file = std::move(file);
  r.stage = stage;
  r.reason = std::move(reason);
  r.experimental = experimental;
  return r;
}

std::string LoadRecord::message() const {
  if (ok()) return "loaded '" + name + "' from '" + file + "'";
  if (name.empty()) return "cannot load '" + file + "': " + reason;
  return "cannot load '" + name + "' from '" + file + "': " + reason;
}

nlohmann::json LoadRecord::to_json() const {
  nlohmann::json j = {{"name", name},
          {"file", file},
          {"stage", to_string(stage)},
          {"reason", reason},
          {"experimental", experimental},
          {"source", to_string(source)}};
  if (!resolved.empty()) j["resolved"] = resolved;
  return j;
}

}  // namespace modkit
