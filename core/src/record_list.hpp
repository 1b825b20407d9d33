// The load records of a registry, in order, with those of registry cache entries decoded only when asked for.
#pragma once

#include "cache_format.hpp"
#include <modkit/core/load_record.hpp>

#include <memory>
#include <mutex>
#include <vector>

namespace modkit::detail {

/// Load records in the order refresh() learnt them. A warm refresh() adds
/// whole registry cache entries whose records (all loaded) stay encoded
/// until all() is first called: most hosts never ask for them.
///
/// Thread safety: all() may be called from several threads at once;
/// append() needs exclusive access.
class RecordList {
 public:
  /// Appends records made here.
  void append(std::vector<LoadRecord> made);
  /// Appends the records of `entry`, decoded when all() is first called.
  void append_encoded(std::shared_ptr<const CachedFile> entry);
  /// Every record, in order.
  std::vector<LoadRecord>& all();

 private:
  struct Batch {
    std::vector<LoadRecord> made;
    std::shared_ptr<const CachedFile> encoded;
  };
  std::vector<Batch> batches_;
  std::vector<LoadRecord> records_;  // once decoded_
  std::once_flag decode_once_;
  bool decoded_ = false;
};

}  // namespace modkit::detail
