#include "ps/local_store.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "ps/optimizer.h"

namespace psrec {
namespace {

// Checks one block against its table (null when the id is unknown). `what` names the float array.
absl::Status CheckBlock(const char* op, size_t index, uint32_t id, const Table* table,
                        size_t num_keys, size_t num_floats, const char* what) {
  if (table == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat(op, " block ", index, ": unknown table id ", id));
  }
  const size_t want = num_keys * table->width();
  if (num_floats != want) {
    return absl::InvalidArgumentError(absl::StrCat(
        op, " block ", index, ": table ", id, " (", table->spec().name(), ") has width ",
        table->width(), ", so ", num_keys, " keys need ", want, " ", what, ", got ", num_floats));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<LocalStore>> LocalStore::Create(
    const google::protobuf::RepeatedPtrField<TableSpec>& tables, OptimizerConfig optimizer,
    uint64_t seed) {
  if (absl::Status s = ResolveOptimizerConfig(&optimizer); !s.ok()) return s;
  std::unique_ptr<LocalStore> store(new LocalStore);
  for (const TableSpec& spec : tables) {
    const uint32_t id = spec.id();
    if (id >= kMaxTableId) {
      return absl::InvalidArgumentError(
          absl::StrCat("table ", id, " (", spec.name(), "): id must be below ", kMaxTableId));
    }
    if (spec.width() == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("table ", id, " (", spec.name(), "): width must be > 0"));
    }
    if (id >= store->tables_.size()) store->tables_.resize(id + 1);
    if (store->tables_[id] != nullptr) {
      return absl::InvalidArgumentError(absl::StrCat("table id ", id, " is used by both ",
                                                     store->tables_[id]->spec().name(), " and ",
                                                     spec.name()));
    }
    store->tables_[id] = std::make_unique<Table>(spec, optimizer, seed);
  }
  return store;
}

absl::Status LocalStore::Pull(absl::Span<const PullBlock> blocks) {
  for (size_t i = 0; i < blocks.size(); ++i) {
    const PullBlock& b = blocks[i];
    if (absl::Status s = CheckBlock("pull", i, b.table, table(b.table), b.keys.size(),
                                    b.values.size(), "values");
        !s.ok()) {
      return s;
    }
  }
  for (const PullBlock& b : blocks) table(b.table)->Pull(b.keys, b.values);
  return absl::OkStatus();
}

absl::Status LocalStore::Push(absl::Span<const PushBlock> blocks) {
  for (size_t i = 0; i < blocks.size(); ++i) {
    const PushBlock& b = blocks[i];
    if (absl::Status s =
            CheckBlock("push", i, b.table, table(b.table), b.keys.size(), b.grads.size(), "grads");
        !s.ok()) {
      return s;
    }
  }
  for (const PushBlock& b : blocks) mutable_table(b.table)->Push(b.keys, b.grads);
  return absl::OkStatus();
}

absl::Status LocalStore::InsertRow(uint32_t table, uint64_t key, uint32_t step,
                                   absl::Span<const float> values, absl::Span<const float> state) {
  Table* t = mutable_table(table);
  if (t == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("insert row ", key, ": unknown table id ", table));
  }
  if (values.size() != t->width() || state.size() != t->state_floats_per_row()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "insert row ", key, " of table ", table, " (", t->spec().name(), "): ", values.size(),
        " values and ", state.size(), " state floats, but the table has width ", t->width(),
        " and ", t->state_floats_per_row(), " state floats per row"));
  }
  t->InsertRow(key, step, values, state);
  return absl::OkStatus();
}

const Table* LocalStore::table(uint32_t id) const {
  return id < tables_.size() ? tables_[id].get() : nullptr;
}

Table* LocalStore::mutable_table(uint32_t id) {
  return id < tables_.size() ? tables_[id].get() : nullptr;
}

}  // namespace psrec
