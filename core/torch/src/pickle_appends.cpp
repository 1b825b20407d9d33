// Rewrites APPEND as MARK ... APPENDS by following the pickle's stack of objects: for each object on
// the stack it remembers the offset where the opcodes that built it begin, so a MARK can go there.
#include "pickle_appends.hpp"

#include <algorithm>
#include <cstdint>
#include <optional>
#include <vector>

namespace modkit {
namespace {

constexpr char kMark = '(';
constexpr char kAppends = 'e';

class Walker {
 public:
  explicit Walker(const std::string& pickle) : p_(pickle) {}

  // Offsets of the APPENDs and of where each appended item begins; nullopt when the walk fails.
  std::optional<std::vector<std::pair<size_t, size_t>>> appends() {
    while (pos_ < p_.size()) {
      const size_t at = pos_;
      const auto op = static_cast<unsigned char>(p_[pos_++]);
      if (op == '.') return found_;  // STOP
      if (!step(op, at)) return std::nullopt;
    }
    return std::nullopt;  // no STOP
  }

 private:
  struct Item {
    size_t begin;
    bool mark;
  };

  bool skip(size_t n) {
    if (p_.size() - pos_ < n) return false;
    pos_ += n;
    return true;
  }
  std::optional<uint64_t> le(size_t n) {
    if (p_.size() - pos_ < n) return std::nullopt;
    uint64_t v = 0;
    for (size_t i = 0; i < n; ++i) v |= uint64_t{static_cast<unsigned char>(p_[pos_ + i])} << (8 * i);
    pos_ += n;
    return v;
  }
  bool skip_counted(size_t width) {  // a length of `width` bytes, then that many bytes
    const auto n = le(width);
    return n && skip(*n);
  }
  bool skip_line() {  // protocol 0 arguments end with a newline
    const size_t nl = p_.find('\n', pos_);
    if (nl == std::string::npos) return false;
    pos_ = nl + 1;
    return true;
  }
  void push(size_t begin) { stack_.push_back({begin, false}); }
  // Pops `n` objects (no marks) and returns where the first of them began.
  std::optional<size_t> pop(size_t n) {
    if (n == 0 || stack_.size() < n) return std::nullopt;
    for (size_t i = stack_.size() - n; i < stack_.size(); ++i) {
      if (stack_[i].mark) return std::nullopt;
    }
    const size_t begin = stack_[stack_.size() - n].begin;
    stack_.resize(stack_.size() - n);
    return begin;
  }
  // Pops everything down to and including the topmost mark; returns where the mark was.
  std::optional<size_t> pop_mark() {
    while (!stack_.empty()) {
      const Item top = stack_.back();
      stack_.pop_back();
      if (top.mark) return top.begin;
    }
    return std::nullopt;
  }
  // Replaces the top `n` objects by one built from them (TUPLE2, REDUCE, ...).
  bool combine(size_t n) {
    const auto begin = pop(n);
    if (!begin) return false;
    push(*begin);
    return true;
  }

  bool step(unsigned char op, size_t at) {
    switch (op) {
      case 0x80: return skip(1);                                      // PROTO
      case 0x95: return skip(8);                                      // FRAME (protocol 4, harmless)
      case '(': stack_.push_back({at, true}); return true;            // MARK
      case ']': case '}': case ')': case 'N': case 0x88: case 0x89:   // empty list/dict/tuple, None, bools
        push(at);
        return true;
      case 'K': push(at); return skip(1);                             // BININT1
      case 'M': push(at); return skip(2);                             // BININT2
      case 'J': push(at); return skip(4);                             // BININT
      case 'G': push(at); return skip(8);                             // BINFLOAT
      case 0x8a: push(at); return skip_counted(1);                    // LONG1
      case 0x8b: push(at); return skip_counted(4);                    // LONG4
      case 'U': case 'C': case 0x8c: push(at); return skip_counted(1);  // short strings, bytes
      case 'T': case 'X': case 'B': push(at); return skip_counted(4);   // strings, bytes
      case 'I': case 'L': case 'F': case 'S': case 'V': push(at); return skip_line();  // protocol 0 literals
      case 'c': push(at); return skip_line() && skip_line();          // GLOBAL module\nname\n
      case 'q': return skip(1);                                       // BINPUT
      case 'r': return skip(4);                                       // LONG_BINPUT
      case 'p': return skip_line();                                   // PUT
      case 0x94: return true;                                         // MEMOIZE
      case 'h': push(at); return skip(1);                             // BINGET
      case 'j': push(at); return skip(4);                             // LONG_BINGET
      case 'g': push(at); return skip_line();                         // GET
      case '0': return pop(1).has_value();                            // POP
      case '1': return pop_mark().has_value();                        // POP_MARK
      case '2':                                                       // DUP
        if (stack_.empty() || stack_.back().mark) return false;
        push(stack_.back().begin);
        return true;
      case 'Q': return combine(1);                                    // BINPERSID: id -> object
      case 'P': push(at); return skip_line();                         // PERSID
      case 0x85: return combine(1);                                   // TUPLE1
      case 0x86: return combine(2);                                   // TUPLE2
      case 0x87: return combine(3);                                   // TUPLE3
      case 'R': case 0x81: return combine(2);                         // REDUCE, NEWOBJ
      case 'b': return pop(1).has_value() && !stack_.empty();         // BUILD: the state goes
      case 's': return pop(2).has_value() && !stack_.empty();         // SETITEM
      case 't': case 'l': case 'd': {                                 // TUPLE, LIST, DICT from a mark
        const auto begin = pop_mark();
        if (!begin) return false;
        push(*begin);
        return true;
      }
      case 'u': case 'e':                                             // SETITEMS, APPENDS
        return pop_mark().has_value() && !stack_.empty() && !stack_.back().mark;
      case 'a': {                                                     // APPEND
        const auto item = pop(1);
        if (!item || stack_.empty() || stack_.back().mark) return false;
        found_.emplace_back(at, *item);
        return true;
      }
      default: return false;
    }
  }

  const std::string& p_;
  size_t pos_ = 0;
  std::vector<Item> stack_;
  std::vector<std::pair<size_t, size_t>> found_;
};

}  // namespace

std::string rewrite_appends(const std::string& pickle) {
  const auto appends = Walker(pickle).appends();
  if (!appends || appends->empty()) return pickle;
  // A MARK before each appended item, in offset order (an item can contain other APPENDs).
  std::vector<size_t> marks;
  marks.reserve(appends->size());
  for (const auto& a : *appends) marks.push_back(a.second);
  std::sort(marks.begin(), marks.end());
  std::string out;
  out.reserve(pickle.size() + marks.size());
  size_t next_mark = 0;
  for (size_t i = 0; i < pickle.size(); ++i) {
    while (next_mark < marks.size() && marks[next_mark] == i) {
      out += kMark;
      ++next_mark;
    }
    out += pickle[i];
  }
  for (const auto& a : *appends) {
    // shifted by the marks inserted at or before it
    const size_t shift = static_cast<size_t>(std::upper_bound(marks.begin(), marks.end(), a.first) - marks.begin());
    out[a.first + shift] = kAppends;
  }
  return out;
}

}  // namespace modkit
