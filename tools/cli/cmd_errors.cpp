// `modkit errors`: loads every plugin through the factory and reports each failed or shadowed load record.
#include "cli.hpp"
#include "output.hpp"
#include "plugin_dirs.hpp"

#include <modkit/core/factory.hpp>

#include <iostream>

namespace modkit::cli {
namespace {

int run_errors(const GlobalOptions& global) {
  // unlike list and inspect, this loads plugins: their code runs
  ModifierFactory factory(factory_options(global));
  factory.refresh();
  std::vector<LoadRecord> failed, shadowed;
  size_t loaded = 0;
  for (const auto& r : factory.records()) {
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
    print_json(std::cout,
               {{"search_dirs", factory.search_dirs()}, {"loaded", loaded}, {"failed", f}, {"shadowed", s}});
  } else {
    if (failed.empty()) {
      std::cout << "no load errors (" << count_of(loaded, "modifier", "modifiers") << " loaded)\n";
    } else {
      std::cout << count_of(failed.size(), "load error", "load errors") << " ("
                << count_of(loaded, "modifier", "modifiers") << " loaded):\n";
      Table table({"NAME", "FILE", "STAGE", "REASON"});
      for (const auto& r : failed) table.add({r.name.empty() ? "-" : r.name, r.file, to_string(r.stage), r.reason});
      table.print(std::cout, "  ");
    }
    if (!shadowed.empty()) {
      std::cout << "\n" << count_of(shadowed.size(), "shadowed modifier", "shadowed modifiers")
                << " (first wins):\n";
      Table table({"NAME", "FILE", "REASON"});
      for (const auto& r : shadowed) table.add({r.name, r.file, r.reason});
      table.print(std::cout, "  ");
    }
  }
  return failed.empty() ? kExitOk : kExitProblem;
}

}  // namespace

Command add_errors_command(CLI::App& parent, const GlobalOptions& global) {
  CLI::App* app = parent.add_subcommand(
      "errors",
      "load every plugin and show each failed or shadowed load record; exits 1 when any load failed, "
      "0 otherwise (loads plugins: their code runs)");
  return {app, [&global] { return run_errors(global); }};
}

}  // namespace modkit::cli
