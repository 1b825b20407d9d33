// Small text helpers for messages: closest names, joined lists.
#pragma once

#include <modkit/core/export.hpp>

#include <string>
#include <vector>

namespace modkit {

/// Edit distance between two strings (case-insensitive).
MODKIT_CORE_API size_t edit_distance(const std::string& a, const std::string& b);

/// Up to `limit` candidates close to `name`, closest first (ties in input order).
MODKIT_CORE_API std::vector<std::string> closest_names(const std::string& name,
                                                       const std::vector<std::string>& candidates,
                                                       size_t limit = 3);

/// "'a', 'b' or 'c'" style list.
MODKIT_CORE_API std::string quoted_list(const std::vector<std::string>& items, const std::string& last_sep = " or ");

/// " (did you mean 'x' or 'y'?)" or "" when nothing is close.
MODKIT_CORE_API std::string did_you_mean(const std::string& name, const std::vector<std::string>& candidates);

}  // namespace modkit
