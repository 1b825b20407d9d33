// `modkit list`: every modifier in the plugin directories, from the registry cache or ELF metadata (no plugin code runs).
#include "cli.hpp"
#include "output.hpp"

#include <modkit/core/catalog.hpp>
#include <modkit/core/text.hpp>


#include <algorithm>
#include <iostream>
#include <numeric>

namespace modkit::cli {
namespace {

int run_list(const GlobalOptions& global) {
  const Catalog catalog = ModifierFactory(factory_options(global)).catalog();

  // main before experimental, then by name; a shadowed provider follows the one that wins
  std::vector<size_t> order(catalog.entries.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    const auto& x = catalog.entries[a];
    const auto& y = catalog.entries[b];
    if (x.experimental != y.experimental) return !x.experimental;
    return x.info.name < y.info.name;
  });

  if (global.json) {
    nlohmann::json modifiers = nlohmann::json::array();
    for (size_t i : order) modifiers.push_back(catalog.entries[i].to_json());
    nlohmann::json problems = nlohmann::json::array();
    for (const auto& p : catalog.problems) problems.push_back(p.to_json());
    print_json(std::cout, {{"search_dirs", catalog.search_dirs},
                           {"cache", catalog.cache_file.empty() ? nlohmann::json() : nlohmann::json(catalog.cache_file)},
                           {"modifiers", modifiers},
                           {"problems", problems}});
    return kExitOk;
  }

  if (catalog.entries.empty()) {
    std::cout << "no modifiers found in "
              << (catalog.search_dirs.empty() ? std::string("no plugin directories")
                                              : quoted_list(catalog.search_dirs, ", "))
              << '\n';
  } else {
    Table table({"NAME", "VERSION", "REGISTRY", "FILE", "SUMMARY"});
    size_t shadowed = 0;
    for (size_t i : order) {
      const auto& e = catalog.entries[i];
      std::string registry = e.registry();
      if (!e.shadowed_by.empty()) {
        registry += " (shadowed)";
        ++shadowed;
      }
      table.add({e.info.name, e.info.version, registry, e.file, e.info.summary});
    }
    table.print(std::cout);
    if (shadowed > 0) {
      std::cout << "\n" << count_of(shadowed, "modifier is", "modifiers are")
                << " shadowed by an earlier file with the same name (first wins)\n";
    }
  }
  if (!catalog.problems.empty()) {
    std::cout << "\nproblems (" << catalog.problems.size() << "; run 'modkit errors' for details):\n";
    Table table({"NAME", "FILE", "REASON"});
    for (const auto& p : catalog.problems) table.add({p.name.empty() ? "-" : p.name, p.file, p.reason});
    table.print(std::cout, "  ");
  }
  return kExitOk;
}

}  // namespace

Command add_list_command(CLI::App& parent, const GlobalOptions& global) {
  CLI::App* app = parent.add_subcommand(
      "list",
      "list every modifier in the plugin directories (reads the registry cache or each file's metadata; no plugin "
      "is loaded)");
  return {app, [&global] { return run_list(global); }};
}

}  // namespace modkit::cli
