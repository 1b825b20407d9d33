// UTF-8 validation: recipes, metadata and descriptor strings must be text that TOML and JSON can carry.
#pragma once

#include <cstddef>
#include <string_view>

namespace modkit::detail {

/// The offset of the first byte that does not start a valid UTF-8 sequence
/// (RFC 3629: no overlong forms, no surrogates, nothing above U+10FFFF), or
/// std::string_view::npos when all of `text` is valid.
size_t invalid_utf8_offset(std::string_view text);

}  // namespace modkit::detail
