// RecordList: runs of records made here and registry cache entries still encoded, flattened on first use.
#include "record_list.hpp"

#include <iterator>

namespace modkit::detail {
namespace {

void move_into(std::vector<LoadRecord>& into, std::vector<LoadRecord>& from) {
  into.insert(into.end(), std::make_move_iterator(from.begin()), std::make_move_iterator(from.end()));
}

}  // namespace

void RecordList::append(std::vector<LoadRecord> made) {
  if (made.empty()) return;
  if (decoded_) {
    move_into(records_, made);
  } else if (!batches_.empty() && !batches_.back().encoded) {
    move_into(batches_.back().made, made);
  } else {
    batches_.push_back({std::move(made), nullptr});
  }
}

void RecordList::append_encoded(std::shared_ptr<const CachedFile> entry) {
  if (decoded_) {
    entry->append_records(records_);
  } else {
    batches_.push_back({{}, std::move(entry)});
  }
}

std::vector<LoadRecord>& RecordList::all() {
  std::call_once(decode_once_, [this] {
    size_t total = records_.size();
    for (const auto& batch : batches_) total += batch.encoded ? batch.encoded->record_count() : batch.made.size();
    records_.reserve(total);
    for (auto& batch : batches_) {
      if (batch.encoded) {
        batch.encoded->append_records(records_);
      } else {
        move_into(records_, batch.made);
      }
    }
    batches_ = {};
    decoded_ = true;
  });
  return records_;
}

}  // namespace modkit::detail
