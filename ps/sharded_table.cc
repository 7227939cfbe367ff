#include "ps/sharded_table.h"

namespace psrec {

void ShardedTable::Pull(absl::Span<const uint64_t> keys, absl::Span<float> out) const {
  ForEachGroup(keys, [&](const Table& table, absl::Span<const uint32_t> positions) {
    table.PullAt(keys, positions, out);
  });
}

// Each sub-shard's table sees its keys as one batch (Table::PushAt), so it keeps its prefetching.
// Rows are independent and a repeated key keeps its order, so the result is the same as one
// Table::Push of the whole block.
void ShardedTable::Push(absl::Span<const uint64_t> keys, absl::Span<const float> grads) {
  ForEachGroup(keys, [&](Table& table, absl::Span<const uint32_t> positions) {
    table.PushAt(keys, positions, grads);
  });
}

template <typename Visit>
void ShardedTable::ForEachGroup(absl::Span<const uint64_t> keys, Visit visit) const {
  std::array<uint32_t, kSubShards + 1> begin;
  const std::vector<uint32_t>& order = Group(keys, &begin);
  for (size_t s = 0; s < kSubShards; ++s) {
    if (begin[s] == begin[s + 1]) continue;
    absl::MutexLock lock(&subs_[s]->mu);
    visit(subs_[s]->table, absl::MakeConstSpan(order).subspan(begin[s], begin[s + 1] - begin[s]));
  }
}

const std::vector<uint32_t>& ShardedTable::Group(
    absl::Span<const uint64_t> keys, std::array<uint32_t, kSubShards + 1>* begin) const {
  // One per thread, reused: the server calls this from gRPC's threads for every request.
  thread_local std::vector<uint32_t> order;
  std::array<uint32_t, kSubShards + 1> count{};
  for (uint64_t key : keys) ++count[SubShardOf(key) + 1];
  for (size_t s = 0; s < kSubShards; ++s) count[s + 1] += count[s];
  *begin = count;
  order.resize(keys.size());
  for (size_t i = 0; i < keys.size(); ++i) order[count[SubShardOf(keys[i])]++] = i;
  return order;
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
