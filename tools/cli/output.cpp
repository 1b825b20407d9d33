// Output helpers: columns sized to their widest cell, JSON with a stable layout.
#include "output.hpp"

#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <ostream>

namespace modkit::cli {
namespace {

// Display width of UTF-8 text: counts code points, not bytes.
size_t display_width(const std::string& s) {
  size_t n = 0;
  for (unsigned char c : s) {
    if ((c & 0xC0) != 0x80) ++n;
  }
  return n;
}

// The first `width` code points of `s`, ending in "..." when cut.
std::string cut(const std::string& s, size_t width) {
  if (display_width(s) <= width) return s;
  if (width <= 3) return std::string(width, '.');
  std::string out;
  size_t n = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if ((c & 0xC0) != 0x80 && n++ == width - 3) break;
    out += s[i];
  }
  return out + "...";
}

}  // namespace

bool is_terminal(std::FILE* stream) { return ::isatty(::fileno(stream)) == 1; }

size_t terminal_width() {
  if (!is_terminal(stdout)) return 0;
  struct winsize ws {};
  if (::ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) return ws.ws_col;
  return 80;
}

void Table::print(std::ostream& out, const std::string& indent) const {
  std::vector<size_t> widths(header_.size(), 0);
  auto measure = [&](const std::vector<std::string>& row) {
    for (size_t i = 0; i < row.size() && i < widths.size(); ++i) {
      widths[i] = std::max(widths[i], display_width(row[i]));
    }
  };
  measure(header_);
  for (const auto& row : rows_) measure(row);

  const size_t term = terminal_width();
  auto line = [&](const std::vector<std::string>& row) {
    std::string text = indent;
    for (size_t i = 0; i < row.size() && i < widths.size(); ++i) {
      const bool last = i + 1 == row.size() || i + 1 == widths.size();
      std::string cell = row[i];
      if (last) {
        if (term > display_width(text) + 4) cell = cut(cell, term - display_width(text) - 1);
        text += cell;
      } else {
        text += cell + std::string(widths[i] - display_width(cell) + 2, ' ');
      }
    }
    while (!text.empty() && text.back() == ' ') text.pop_back();
    out << text << '\n';
  };
  line(header_);
  for (const auto& row : rows_) line(row);
}

void print_json(std::ostream& out, const nlohmann::json& value) {
  // a plugin's symbol or file name need not be UTF-8: replace what JSON cannot carry rather than fail
  out << value.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << '\n';
}

std::string format_value(const nlohmann::json& value) {
  if (value.is_array()) {
    std::string s;
    for (const auto& item : value) s += (s.empty() ? "" : ", ") + format_value(item);
    return "[" + s + "]";
  }
  return value.dump();
}

std::string count_of(size_t n, const std::string& singular, const std::string& plural) {
  return std::to_string(n) + " " + (n == 1 ? singular : plural);
}

}  // namespace modkit::cli
