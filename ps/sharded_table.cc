#include "ps/sharded_table.h"

namespace psrec {

void ShardedTable::Pull(absl::Span<const uint64_t> keys, absl::Span<float> out) const {
  const size_t width = spec_.width();
  std::vector<uint32_t> order;
  std::array<uint32_t, kSubShards + 1> begin;
  Group(keys, &order, &begin);
  for (size_t s = 0; s < kSubShards; ++s) {
    if (begin[s] == begin[s + 1]) continue;
    absl::MutexLock lock(&subs_[s]->mu);
    for (uint32_t j = begin[s]; j < begin[s + 1]; ++j) {
      const size_t i = order[j];
      subs_[s]->table.Pull(keys.subspan(i, 1), out.subspan(i * width, width));
    }
  }
}

// Gathers each sub-shard's keys and gradients so that Table::Push sees them as one batch and keeps
// its prefetching. Rows are independent and a repeated key keeps its order, so the result is the
// same as one Table::Push of the whole block.
void ShardedTable::Push(absl::Span<const uint64_t> keys, absl::Span<const float> grads) {
  const size_t width = spec_.width();
  std::vector<uint32_t> order;
  std::array<uint32_t, kSubShards + 1> begin;
  Group(keys, &order, &begin);
  std::vector<uint64_t> sub_keys;
  std::vector<float> sub_grads;
  for (size_t s = 0; s < kSubShards; ++s) {
    if (begin[s] == begin[s + 1]) continue;
    sub_keys.clear();
    sub_grads.clear();
    for (uint32_t j = begin[s]; j < begin[s + 1]; ++j) {
      const size_t i = order[j];
      sub_keys.push_back(keys[i]);
      sub_grads.insert(sub_grads.end(), grads.begin() + i * width, grads.begin() + (i + 1) * width);
    }
    absl::MutexLock lock(&subs_[s]->mu);
    subs_[s]->table.Push(sub_keys, sub_grads);
  }
}

void ShardedTable::ForEachRow(const Table::RowVisitor& visit) const {
  for (const auto& sub : subs_) {
    absl::MutexLock lock(&sub->mu);
    sub->table.ForEachRow(visit);
  }
}

void ShardedTable::InsertRow(uint64_t key, uint32_t step, absl::Span<const float> values,
                             absl::Span<const float> state) {
  SubShard& sub = *subs_[SubShardOf(key)];
  absl::MutexLock lock(&sub.mu);
  sub.table.InsertRow(key, step, values, state);
}

}  // namespace psrec
