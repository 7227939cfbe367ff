// One table's rows on one parameter-server shard, split into sub-shards that each have their own
// lock, so that requests touching different rows do not wait for each other. Thread-safe.
#ifndef PSREC_PS_SHARDED_TABLE_H_
#define PSREC_PS_SHARDED_TABLE_H_

#include <array>
#include <cstdint>
#include <memory>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/types/span.h"
#include "common/rng.h"
#include "proto/config.pb.h"
#include "ps/optimizer.h"
#include "ps/table.h"

namespace psrec {

// One table's rows on this shard, in kSubShards independently locked Tables.
class ShardedTable {
 public:
  static constexpr int kSubShardBits = 4;
  static constexpr size_t kSubShards = size_t{1} << kSubShardBits;

  ShardedTable(const TableSpec& spec, const OptimizerConfig& optimizer, uint64_t seed)
      : spec_(spec), state_floats_per_row_(spec.width() * StateFloatsPerParam(optimizer.kind())) {
    for (auto& sub : subs_) sub = std::make_unique<SubShard>(spec, optimizer, seed);
  }

  const TableSpec& spec() const { return spec_; }
  uint32_t width() const { return spec_.width(); }

  // As Table::Pull and Table::Push, for keys of any sub-shard.
  void Pull(absl::Span<const uint64_t> keys, absl::Span<float> out) const;
  void Push(absl::Span<const uint64_t> keys, absl::Span<const float> grads);

  // As Table::state_floats_per_row.
  uint32_t state_floats_per_row() const { return state_floats_per_row_; }

  // As Table::ForEachRow, over every sub-shard: each is locked in turn while its rows are visited,
  // so `visit` must not call back into this table. Rows pushed meanwhile to a sub-shard already
  // visited are not seen; a consistent snapshot needs the pushes stopped.
  void ForEachRow(const Table::RowVisitor& visit) const;

  // As Table::InsertRow, into the key's sub-shard.
  void InsertRow(uint64_t key, uint32_t step, absl::Span<const float> values,
                 absl::Span<const float> state);

  // Every byte the sub-shards' tables hold, keys and hash indexes included (Table::memory_bytes).
  uint64_t MemoryBytes() const {
    uint64_t bytes = 0;
    for (const auto& sub : subs_) {
      absl::MutexLock lock(&sub->mu);
      bytes += sub->table.memory_bytes();
    }
    return bytes;
  }

  // Rows, and the bytes of their values, state and step counts (Table::bytes).
  void Sizes(uint64_t* rows, uint64_t* bytes) const {
    *rows = *bytes = 0;
    for (const auto& sub : subs_) {
      absl::MutexLock lock(&sub->mu);
      *rows += sub->table.num_rows();
      *bytes += sub->table.bytes();
    }
  }

 private:
  struct SubShard {
    SubShard(const TableSpec& spec, const OptimizerConfig& optimizer, uint64_t seed)
        : table(spec, optimizer, seed) {}
    mutable absl::Mutex mu;
    Table table ABSL_GUARDED_BY(mu);
  };

  // Independent of ShardOf (which mixes the table id into the key before hashing and keeps the low
  // bits), so the keys a shard owns still spread evenly over its sub-shards.
  size_t SubShardOf(uint64_t key) const {
    return Mix64(key ^ (uint64_t{spec_.id()} * 0xd6e8feb86659fd93ULL)) >> (64 - kSubShardBits);
  }

  // Positions of `keys` grouped by sub-shard, in their order within each group: sub-shard s holds
  // positions [begin[s], begin[s + 1]) of the vector returned, which is this thread's own and is
  // valid until its next call.
  const std::vector<uint32_t>& Group(absl::Span<const uint64_t> keys,
                                     std::array<uint32_t, kSubShards + 1>* begin) const;

  // Calls visit(table, positions) for each sub-shard that holds some of `keys`, under its lock,
  // with the positions of its keys as Group gives them. A template, not a std::function: Pull and
  // Push call it for every request, and a lambda's call inlines without an allocation.
  template <typename Visit>
  void ForEachGroup(absl::Span<const uint64_t> keys, Visit visit) const;

  const TableSpec spec_;
  const uint32_t state_floats_per_row_;
  std::array<std::unique_ptr<SubShard>, kSubShards> subs_;
};

}  // namespace psrec

#endif  // PSREC_PS_SHARDED_TABLE_H_
