// Target matching: class names, exact names and "re:" patterns with llmcompressor's re.match semantics.
#include <modkit/torch/targets.hpp>

#include <atomic>
#include <regex>

namespace modkit {

struct TargetMatcher::Impl {
  struct Entry {
    std::string text;
    bool is_regex = false;
    std::regex regex;
  };
  std::vector<Entry> targets;
  std::vector<Entry> ignore;
  // One flag per target; atomic so that a shared matcher stays race-free.
  mutable std::vector<std::atomic<bool>> matched;

  static std::vector<Entry> compile(const std::vector<std::string>& texts) {
    std::vector<Entry> entries;
    entries.reserve(texts.size());
    for (const std::string& text : texts) {
      Entry e;
      e.text = text;
      if (text.rfind("re:", 0) == 0) {
        e.is_regex = true;
        try {
          e.regex = std::regex(text.substr(3), std::regex::ECMAScript);
        } catch (const std::regex_error& err) {
          throw ValueError("invalid regular expression in target '" + text + "': " + err.what());
        }
      }
      entries.push_back(std::move(e));
    }
    return entries;
  }

  // llmcompressor: _match_name (re.match or equality) or _match_class (class name).
  static bool entry_matches(const Entry& e, const ModuleInfo& m) {
    if (e.is_regex) {
      // match_continuous anchors at the start only: Python's re.match.
      return std::regex_search(m.name, e.regex, std::regex_constants::match_continuous);
    }
    return e.text == m.name || e.text == m.class_name;
  }
};

TargetMatcher::TargetMatcher(const std::vector<std::string>& targets,
                             const std::vector<std::string>& ignore)
    : impl_(std::make_unique<Impl>()) {
  impl_->targets = Impl::compile(targets);
  impl_->ignore = Impl::compile(ignore);
  impl_->matched = std::vector<std::atomic<bool>>(impl_->targets.size());
}

TargetMatcher::~TargetMatcher() = default;
TargetMatcher::TargetMatcher(TargetMatcher&&) noexcept = default;
TargetMatcher& TargetMatcher::operator=(TargetMatcher&&) noexcept = default;

bool TargetMatcher::matches(const ModuleInfo& module) const {
  bool hit = false;
  for (size_t i = 0; i < impl_->targets.size(); ++i) {
    if (Impl::entry_matches(impl_->targets[i], module)) {
      impl_->matched[i].store(true, std::memory_order_relaxed);
      hit = true;
      break;  // as llmcompressor: the first matching target claims the module
    }
  }
  if (!hit) return false;
  for (const Impl::Entry& i : impl_->ignore) {
    if (Impl::entry_matches(i, module)) return false;
  }
  return true;
}

std::vector<std::string> TargetMatcher::unmatched_targets() const {
  std::vector<std::string> out;
  for (size_t i = 0; i < impl_->targets.size(); ++i) {
    if (!impl_->matched[i].load(std::memory_order_relaxed)) out.push_back(impl_->targets[i].text);
  }
  return out;
}

std::vector<ModuleInfo> match_modules(const Model& model, const std::vector<std::string>& targets,
                                      const std::vector<std::string>& ignore) {
  TargetMatcher matcher(targets, ignore);
  std::vector<ModuleInfo> out;
  for (ModuleInfo& m : model.modules()) {
    if (matcher.matches(m)) out.push_back(std::move(m));
  }
  return out;
}

}  // namespace modkit
