// Terminal and JSON output helpers: aligned tables, JSON printing, value formatting.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdio>
#include <iosfwd>
#include <string>
#include <vector>

namespace modkit::cli {

/// True when `stream` (stdout or stderr) is a terminal.
bool is_terminal(std::FILE* stream);

/// The terminal width of stdout, or 0 when it is not a terminal.
size_t terminal_width();

/// A table of text columns printed with aligned columns. On a terminal the
/// last column is cut to the width of the window; in a pipe nothing is cut.
class Table {
 public:
  explicit Table(std::vector<std::string> header) : header_(std::move(header)) {}
  void add(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
  bool empty() const { return rows_.empty(); }
  void print(std::ostream& out, const std::string& indent = "") const;

 private:
  std::vector<std::string> header_;
  std::vector<std::vector<std::string>> rows_;
};

/// Prints `value` as indented JSON followed by a newline.
void print_json(std::ostream& out, const nlohmann::json& value);

/// A JSON value as a user reads it: strings quoted, numbers as written.
std::string format_value(const nlohmann::json& value);

/// "1 modifier" / "2 modifiers".
std::string count_of(size_t n, const std::string& singular, const std::string& plural);

}  // namespace modkit::cli
