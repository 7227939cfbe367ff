// A parameter table: rows of spec.width floats keyed by 64-bit ids, with their optimizer state.
//
// Rows are kept in contiguous float arrays and found through a hash index. A row that was never
// pushed does not exist: pulling it reads its initial value, which depends only on (seed, spec.id,
// key), so every process computes the same one; the first push creates it. A Table is not
// thread-safe: the server puts it behind a lock per sub-shard.
#ifndef PSREC_PS_TABLE_H_
#define PSREC_PS_TABLE_H_

#include <cstdint>
#include <functional>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/types/span.h"
#include "proto/config.pb.h"

namespace psrec {

// Writes the initial value of row `key` of table `spec` into `out` (spec.width floats).
void InitRow(const TableSpec& spec, uint64_t seed, uint64_t key, absl::Span<float> out);

class Table {
 public:
  // `optimizer` must already be resolved (ResolveOptimizerConfig).
  Table(const TableSpec& spec, const OptimizerConfig& optimizer, uint64_t seed);

  const TableSpec& spec() const { return spec_; }
  uint32_t width() const { return spec_.width(); }

  // out.size() == keys.size() * width(). Absent rows read as their initial value and are not
  // created.
  void Pull(absl::Span<const uint64_t> keys, absl::Span<float> out) const;

  // grads.size() == keys.size() * width(). Creates absent rows, then applies the optimizer to each.
  // A key that repeats is updated once per occurrence, in order.
  void Push(absl::Span<const uint64_t> keys, absl::Span<const float> grads);

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

  size_t num_rows() const { return index_.size(); }
  // Bytes held by values and optimizer state (not counting the hash index).
  size_t bytes() const;

 private:
  uint32_t FindOrCreate(uint64_t key);

  TableSpec spec_;
  OptimizerConfig optimizer_;
  uint64_t seed_;
  int state_per_param_;
  absl::flat_hash_map<uint64_t, uint32_t> index_;  // key -> row number
  std::vector<float> values_;                      // row r at [r * width, (r + 1) * width)
  std::vector<float> state_;                       // row r at [r * width * state_per_param_, ...)
  std::vector<uint32_t> steps_;                    // row r's own step count
};

}  // namespace psrec

#endif  // PSREC_PS_TABLE_H_
