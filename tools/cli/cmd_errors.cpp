// `modkit errors`: refreshes a factory (the registry cache, else a fresh scan) and reports each failed or shadowed load record.
#include "cli.hpp"
#include "output.hpp"

#include <modkit/core/factory.hpp>

#include <iostream>
#include <memory>

namespace modkit::cli {
namespace {

int run_errors(const GlobalOptions& global, bool rescan) {
  // unlike list and inspect, this loads new or changed plugins (in the
  // scanner child): their code runs
  FactoryOptions options = factory_options(global);
  if (rescan && options.cache == CacheMode::Use) options.cache = CacheMode::Rebuild;
  ModifierFactory factory(options);
  factory.refresh();
  std::vector<LoadRecord> failed, shadowed;
  size_t loaded = 0, from_cache = 0, total = 0;
  for (const auto& r : factory.records()) {
    ++total;
    if (r.source == RecordSource::Cache) ++from_cache;
    if (r.ok()) {
      ++loaded;
    } else if (r.stage == LoadStage::Shadowed) {
      shadowed.push_back(r);
    } else {
      failed.push_back(r);
    }
  }

  if (global.json) {
    nlohmann::json f = nlohmann::json::array(), s = nlohmann::json::array();
    for (const auto& r : failed) f.push_back(r.to_json());
    for (const auto& r : shadowed) s.push_back(r.to_json());
    const std::string cache = factory.cache_file();
    print_json(std::cout, {{"search_dirs", factory.search_dirs()},
                           {"cache", cache.empty() ? nlohmann::json() : nlohmann::json(cache)},
                           {"loaded", loaded},
                           {"failed", f},
                           {"shadowed", s}});
  } else {
    if (failed.empty()) {
      std::cout << "no load errors (" << count_of(loaded, "modifier", "modifiers") << " loaded)\n";
    } else {
      std::cout << count_of(failed.size(), "load error", "load errors") << " ("
                << count_of(loaded, "modifier", "modifiers") << " loaded):\n";
      Table table({"NAME", "FILE", "STAGE", "SOURCE", "REASON"});
      for (const auto& r : failed) {
        table.add({r.name.empty() ? "-" : r.name, r.file, to_string(r.stage), to_string(r.source), r.reason});
      }
      table.print(std::cout, "  ");
    }
    if (!shadowed.empty()) {
      std::cout << "\n" << count_of(shadowed.size(), "shadowed modifier", "shadowed modifiers")
                << " (first wins):\n";
      Table table({"NAME", "FILE", "REASON"});
      for (const auto& r : shadowed) table.add({r.name, r.file, r.reason});
      table.print(std::cout, "  ");
    }
    if (from_cache > 0) {
      std::cout << "\n" << from_cache << " of " << count_of(total, "record", "records") << " from the registry cache '"
                << factory.cache_file() << "' (--rescan scans every plugin again)\n";
    }
  }
  return failed.empty() ? kExitOk : kExitProblem;
}

}  // namespace

Command add_errors_command(CLI::App& parent, const GlobalOptions& global) {
  CLI::App* app = parent.add_subcommand(
      "errors",
      "load every plugin and show each failed or shadowed load record and where it came from (the registry "
      "cache or a fresh scan); exits 1 when any load failed, 0 otherwise (loads new or changed plugins in the "
      "scanner: their code runs)");
  auto rescan = std::make_shared<bool>(false);
  app->add_flag("--rescan", *rescan, "ignore the registry cache: scan every plugin again and rewrite its entries");
  return {app, [&global, rescan] { return run_errors(global, *rescan); }};
}

}  // namespace modkit::cli
