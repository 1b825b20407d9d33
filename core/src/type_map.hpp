// The name table of a registry: plugin types by name, first wins, in a sorted vector.
#pragma once

#include "lazy_plugin.hpp"

#include <algorithm>
#include <memory>
#include <string_view>
#include <utility>
#include <vector>

namespace modkit::detail {

/// Types by name. A registry is built once per refresh(), mostly in
/// ascending order (files are walked sorted), then only read: a sorted
/// vector costs one allocation where a map costs a node per type.
class TypeMap {
 public:
  using TypePtr = std::shared_ptr<const LazyType>;
  using value_type = std::pair<std::string_view, TypePtr>;  ///< the key views the type's own name
  using Items = std::vector<value_type>;

 private:
  // defined first: the members below deduce their return types from these
  template <class V>
  static auto lower_bound(V& items, std::string_view name) {
    return std::lower_bound(items.begin(), items.end(), name,
                            [](const value_type& item, std::string_view n) { return item.first < n; });
  }
  template <class V>
  static auto found(V& items, std::string_view name) {
    auto at = lower_bound(items, name);
    return at != items.end() && at->first == name ? at : items.end();
  }
  Items items_;

 public:
  auto begin() { return items_.begin(); }
  auto end() { return items_.end(); }
  auto begin() const { return items_.begin(); }
  auto end() const { return items_.end(); }
  auto find(std::string_view name) { return found(items_, name); }
  auto find(std::string_view name) const { return found(items_, name); }
  size_t count(std::string_view name) const { return find(name) != end() ? 1 : 0; }
  void erase(Items::iterator at) { items_.erase(at); }

  /// Adds `type` (moved from) unless its name is taken; then returns the type that has it.
  const TypePtr* insert_first(TypePtr& type) {
    const std::string_view name = type->name();
    auto at = !items_.empty() && items_.back().first < name ? items_.end() : lower_bound(items_, name);
    if (at != items_.end() && at->first == name) return &at->second;
    items_.emplace(at, name, std::move(type));
    return nullptr;
  }
};

}  // namespace modkit::detail
