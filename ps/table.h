// A parameter table: rows of spec.width floats keyed by 64-bit ids, with their optimizer state.
//
// A row that was never pushed does not exist: pulling it reads its initial value, which depends
// only on (seed, spec.id, key), so every process computes the same one; the first push creates it.
// A Table is not thread-safe: the server puts it behind a lock per sub-shard.
//
// Memory. Rows live in chunks of kChunkRows: each chunk one allocation holding its rows' values,
// optimizer state, step counts and keys, so that a table never holds more than one chunk it does
// not use (a vector that doubles can hold twice what it needs). The hash index holds 4-byte row
// numbers alone and finds a key by looking at the row's stored key, so it costs 5 bytes a slot
// (the row number and a control byte) at a load of 7/16 to 7/8. A row of a dim-30 Adam table
// takes 120 bytes of values, 240 of state, 4 of step count, 8 of key and 6-12 of index: 378-384
// bytes (memory_bytes() counts them all).
#ifndef PSREC_PS_TABLE_H_
#define PSREC_PS_TABLE_H_

#include <cstdint>
#include <cstdlib>
#include <functional>
#include <memory>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/hash/hash.h"
#include "absl/types/span.h"
#include "proto/config.pb.h"

namespace psrec {

// Writes the initial value of row `key` of table `spec` into `out` (spec.width floats).
void InitRow(const TableSpec& spec, uint64_t seed, uint64_t key, absl::Span<float> out);

class Table {
 public:
  // `optimizer` must already be resolved (ResolveOptimizerConfig).
  Table(const TableSpec& spec, const OptimizerConfig& optimizer, uint64_t seed);
  // The index refers to its table: a table stays where it was made.
  Table(const Table&) = delete;
  Table& operator=(const Table&) = delete;

  const TableSpec& spec() const { return spec_; }
  uint32_t width() const { return spec_.width(); }

  // out.size() == keys.size() * width(). Absent rows read as their initial value and are not
  // created.
  void Pull(absl::Span<const uint64_t> keys, absl::Span<float> out) const;

  // grads.size() == keys.size() * width(). Creates absent rows, then applies the optimizer to each.
  // A key that repeats is updated once per occurrence, in order.
  void Push(absl::Span<const uint64_t> keys, absl::Span<const float> grads);

  // As Pull and Push, for the keys at `positions` alone, in that order: key keys[p] reads into, or
  // takes its gradient from, [p * width(), (p + 1) * width()) of out or grads. Every position must
  // be below keys.size(). A caller that splits one request over several tables (ShardedTable) needs
  // no copy of its keys or gradients.
  void PullAt(absl::Span<const uint64_t> keys, absl::Span<const uint32_t> positions,
              absl::Span<float> out) const;
  void PushAt(absl::Span<const uint64_t> keys, absl::Span<const uint32_t> positions,
              absl::Span<const float> grads);

  // Floats of optimizer state each row keeps: width() times 0 (SGD), 1 (ADAGRAD) or 2 (ADAM).
  uint32_t state_floats_per_row() const { return spec_.width() * state_per_param_; }

  // Calls `visit` once for every created row, in no particular order, with its key, step count,
  // values (width() floats) and optimizer state (state_floats_per_row() floats). The spans are
  // valid only during the call, and `visit` must not change the table.
  using RowVisitor = std::function<void(uint64_t key, uint32_t step, absl::Span<const float> values,
                                        absl::Span<const float> state)>;
  void ForEachRow(const RowVisitor& visit) const;

  // Creates row `key`, or overwrites it if it exists, with exactly this step count, values and
  // optimizer state, as a checkpoint restore needs. values.size() must be width() and state.size()
  // state_floats_per_row(): the caller has checked them (a mismatch is a broken invariant).
  void InsertRow(uint64_t key, uint32_t step, absl::Span<const float> values,
                 absl::Span<const float> state);

  size_t num_rows() const { return rows_; }
  // Bytes of the rows' values, optimizer state and step counts: what they hold, not what holding
  // them costs (memory_bytes).
  size_t bytes() const;
  // Every byte the table has allocated: its chunks (keys, values, state, step counts, and the rows
  // of the last chunk not yet used) and its hash index.
  size_t memory_bytes() const;

  static constexpr size_t kChunkRows = 512;

 private:
  // Hash and equality of the index, whose elements are row numbers standing for their keys: a
  // lookup by key compares it with a row's stored key.
  struct KeyHash {
    using is_transparent = void;
    const Table* table;
    size_t operator()(uint32_t row) const { return (*this)(table->key(row)); }
    size_t operator()(uint64_t key) const { return absl::Hash<uint64_t>()(key); }
  };
  struct KeyEq {
    using is_transparent = void;
    const Table* table;
    bool operator()(uint32_t a, uint32_t b) const { return a == b; }
    bool operator()(uint32_t row, uint64_t key) const { return table->key(row) == key; }
    bool operator()(uint64_t key, uint32_t row) const { return table->key(row) == key; }
  };

  uint32_t FindOrCreate(uint64_t key);
  // `floats` values or gradients for `num_keys` keys: a mismatch is a broken invariant.
  void CheckSize(const char* what, size_t floats, size_t num_keys) const;
  // Pull and Push of the n keys keys[position(0)], ..., keys[position(n - 1)].
  template <typename Position>
  void PullRows(absl::Span<const uint64_t> keys, size_t n, Position position, float* out) const;
  template <typename Position>
  void PushRows(absl::Span<const uint64_t> keys, size_t n, Position position, const float* grads);
  // Row r's parts, in chunk r / kChunkRows.
  float* values(size_t r) const { return chunk(r) + (r % kChunkRows) * spec_.width(); }
  float* state(size_t r) const {
    return chunk(r) + kChunkRows * spec_.width() + (r % kChunkRows) * state_width_;
  }
  uint64_t& key(size_t r) const { return KeysOf(chunk(r))[r % kChunkRows]; }
  uint32_t& step(size_t r) const { return StepsOf(chunk(r))[r % kChunkRows]; }
  float* chunk(size_t r) const { return reinterpret_cast<float*>(chunks_[r / kChunkRows].get()); }
  uint64_t* KeysOf(float* c) const {
    return reinterpret_cast<uint64_t*>(c + kChunkRows * (spec_.width() + state_width_));
  }
  uint32_t* StepsOf(float* c) const { return reinterpret_cast<uint32_t*>(KeysOf(c) + kChunkRows); }
  size_t ChunkBytes() const {
    return kChunkRows *
           ((spec_.width() + state_width_) * sizeof(float) + sizeof(uint64_t) + sizeof(uint32_t));
  }

  TableSpec spec_;
  OptimizerConfig optimizer_;
  uint64_t seed_;
  int state_per_param_;
  size_t state_width_;  // floats of state per row
  size_t rows_ = 0;
  struct Free {
    void operator()(void* p) const { std::free(p); }
  };
  // malloc'ed: the bytes take the types written to them (floats, then keys and step counts).
  std::vector<std::unique_ptr<char, Free>> chunks_;
  absl::flat_hash_set<uint32_t, KeyHash, KeyEq> index_;
};

}  // namespace psrec

#endif  // PSREC_PS_TABLE_H_
