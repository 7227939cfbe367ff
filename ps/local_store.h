// The in-process ParamStore: one Table per TableSpec, in this process's memory. Not thread-safe.
#ifndef PSREC_PS_LOCAL_STORE_H_
#define PSREC_PS_LOCAL_STORE_H_

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "common/param_store.h"
#include "google/protobuf/repeated_field.h"
#include "proto/config.pb.h"
#include "ps/table.h"

namespace psrec {

class LocalStore : public ParamStore {
 public:
  // Fails on a duplicate table id, an id >= kMaxTableId, a zero width, or an invalid optimizer
  // config. An empty list of tables is valid.
  static absl::StatusOr<std::unique_ptr<LocalStore>> Create(
      const google::protobuf::RepeatedPtrField<TableSpec>& tables, OptimizerConfig optimizer,
      uint64_t seed);

  // Errors: an unknown table id, or a values/grads size that is not keys.size() * width. Every
  // block is checked before any is applied, so an error changes no row.
  absl::Status Pull(absl::Span<const PullBlock> blocks) override;
  absl::Status Push(absl::Span<const PushBlock> blocks) override;

  // Creates or overwrites row `key` of table `table` with this step count, values and optimizer
  // state (a checkpoint restore: ps/checkpoint.h's LoadCheckpoint hands out rows of this shape).
  // Errors: an unknown table id, or values/state sizes other than the table's width and
  // state_floats_per_row(); the row is then unchanged.
  absl::Status InsertRow(uint32_t table, uint64_t key, uint32_t step,
                         absl::Span<const float> values, absl::Span<const float> state);

  // nullptr for an unknown id.
  const Table* table(uint32_t id) const;

 private:
  LocalStore() = default;
  Table* mutable_table(uint32_t id);

  std::vector<std::unique_ptr<Table>> tables_;  // indexed by table id; null where none
};

}  // namespace psrec

#endif  // PSREC_PS_LOCAL_STORE_H_
