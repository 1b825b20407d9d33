// `modkit inspect <Type|file.so>`: gst-inspect style details of a modifier from its metadata (no dlopen).
#include "cli.hpp"
#include "output.hpp"

#include <modkit/core/catalog.hpp>
#include <modkit/core/text.hpp>
#include <modkit/modkit.h>

#include <algorithm>
#include <climits>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <sstream>

namespace modkit::cli {
namespace {

bool looks_like_path(const std::string& arg) {
  return arg.find('/') != std::string::npos ||
         (arg.size() > 3 && arg.compare(arg.size() - 3, 3, ".so") == 0);
}

std::string real_path(const std::string& path) {
  char buf[PATH_MAX];
  return ::realpath(path.c_str(), buf) != nullptr ? std::string(buf) : path;
}

std::string torch_line(const ModifierInfo& info) {
  const std::string abi = info.cxx11_abi < 0 ? "unknown" : std::to_string(info.cxx11_abi);
  return (info.torch_version.empty() ? std::string("none") : info.torch_version) + " (cxx11 abi " + abi + ")";
}

std::string param_line(const ParamInfo& p) {
  std::string s = p.type;
  if (p.required) {
    s += ", required";
  } else {
    s += ", default " + format_value(p.default_value);
  }
  if (!p.min.is_null() && !p.max.is_null()) {
    s += ", range " + range_text(p);
  } else if (!p.min.is_null()) {
    s += (p.min_exclusive ? ", above " : ", min ") + format_value(p.min);
  } else if (!p.max.is_null()) {
    s += (p.max_exclusive ? ", below " : ", max ") + format_value(p.max);
  }
  if (p.choices.is_array()) {
    std::string list;
    for (const auto& c : p.choices) list += (list.empty() ? "" : ", ") + format_value(c);
    s += ", choices " + list;
  }
  return s;
}

void print_entry(std::ostream& out, const CatalogEntry& e, const std::vector<const CatalogEntry*>& others) {
  const ModifierInfo& info = e.info;
  Table facts({"", ""});
  facts.add({"File", e.file});
  facts.add({"Registry", !e.searched ? std::string("none (not in a plugin directory)")
                                     : std::string(e.registry()) +
                                           (e.shadowed_by.empty() ? "" : " (shadowed by '" + e.shadowed_by + "')")});
  facts.add({"Version", info.version});
  facts.add({"Summary", info.summary});
  facts.add({"ABI", std::to_string(info.abi_major) + "." + std::to_string(info.abi_min_minor) + " (host " +
                        std::to_string(MODKIT_ABI_MAJOR) + "." + std::to_string(MODKIT_ABI_MINOR) + ")"});
  facts.add({"LibTorch", torch_line(info)});
  facts.add({"Pipeline", info.pipeline});
  for (const auto* o : others) {
    facts.add({"Also in", std::string(o->registry()) + ": " + o->file + (o->shadowed_by.empty() ? "" : " (shadowed)")});
  }
  out << info.name << '\n';
  // the header row of a two-column fact table is empty: print from the second line
  std::ostringstream text;
  facts.print(text, "  ");
  const std::string body = text.str();
  out << body.substr(body.find('\n') + 1);

  out << "\nParameters (" << info.params.size() << "):\n";
  if (info.params.empty()) out << "  none\n";
  size_t width = 0;
  for (const auto& p : info.params) width = std::max(width, p.name.size());
  for (const auto& p : info.params) {
    const std::string pad(width - p.name.size() + 2, ' ');
    out << "  " << p.name << pad << param_line(p) << '\n';
    if (!p.doc.empty()) out << "  " << std::string(width + 2, ' ') << p.doc << '\n';
  }
}

nlohmann::json problems_json(const std::vector<LoadRecord>& problems) {
  nlohmann::json j = nlohmann::json::array();
  for (const auto& p : problems) j.push_back(p.to_json());
  return j;
}

int print_result(const GlobalOptions& global, const std::vector<CatalogEntry>& entries,
                 const std::vector<std::vector<const CatalogEntry*>>& others,
                 const std::vector<LoadRecord>& problems) {
  if (global.json) {
    nlohmann::json modifiers = nlohmann::json::array();
    for (const auto& e : entries) modifiers.push_back(e.to_json());
    print_json(std::cout, {{"modifiers", modifiers}, {"problems", problems_json(problems)}});
  } else {
    for (size_t i = 0; i < entries.size(); ++i) {
      if (i > 0) std::cout << '\n';
      print_entry(std::cout, entries[i], others[i]);
    }
  }
  for (const auto& p : problems) std::cerr << "modkit: " << p.message() << '\n';
  return problems.empty() ? kExitOk : kExitProblem;
}

int inspect_file(const GlobalOptions& global, const std::string& path) {
  const ModifierFactory factory(factory_options(global));
  PluginFileScan scan = scan_plugin_file(path, false, FactoryOptions::default_torch_version());
  if (!scan.unreadable.empty()) throw Failure(kExitProblem, scan.unreadable);  // the reader's own sentence
  if (scan.entries.empty() && scan.problems.empty()) {
    throw Failure(kExitProblem, "'" + path + "' exports no modifiers (expected *Modifier symbols, found none)");
  }
  // where the file sits in the search directories decides its registry and shadowing
  const Catalog catalog = factory.catalog();
  const std::string real = real_path(path);
  std::vector<std::vector<const CatalogEntry*>> others(scan.entries.size());
  for (size_t i = 0; i < scan.entries.size(); ++i) {
    auto& e = scan.entries[i];
    e.searched = false;
    for (const auto& c : catalog.entries) {
      if (c.info.name != e.info.name) continue;
      if (real_path(c.file) == real) {
        e.experimental = c.experimental;
        e.shadowed_by = c.shadowed_by;
        e.searched = true;
      } else {
        others[i].push_back(&c);
      }
    }
  }
  return print_result(global, scan.entries, others, scan.problems);
}

int inspect_type(const GlobalOptions& global, const std::string& type) {
  const Catalog catalog = ModifierFactory(factory_options(global)).catalog();
  const CatalogEntry* entry = catalog.find(type);
  if (entry == nullptr) {
    for (const auto& p : catalog.problems) {
      if (p.name == type) throw Failure(kExitProblem, p.message());
    }
    throw Failure(kExitProblem, "no modifier named '" + type + "'" + did_you_mean(type, catalog.names()));
  }
  std::vector<const CatalogEntry*> others;
  for (const auto& c : catalog.entries) {
    if (c.info.name == type && &c != entry) others.push_back(&c);
  }
  return print_result(global, {*entry}, {others}, {});
}

}  // namespace

Command add_inspect_command(CLI::App& parent, const GlobalOptions& global) {
  CLI::App* app = parent.add_subcommand(
      "inspect", "show a modifier's version, ABI, LibTorch fingerprint and parameters (metadata only)");
  auto target = std::make_shared<std::string>();
  app->add_option("target", *target, "a modifier type name, or the path of a plugin file (.so)")->required();
  return {app, [&global, target] {
            return looks_like_path(*target) ? inspect_file(global, *target) : inspect_type(global, *target);
          }};
}

}  // namespace modkit::cli
