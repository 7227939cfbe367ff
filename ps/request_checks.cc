#include "ps/request_checks.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/sharding.h"

namespace psrec {
namespace {

// Whether every value is finite: a float is not when its exponent bits are all set (an infinity
// or a NaN). One pass with no branch, which GCC vectorizes; a push is checked whole before any of
// it is applied, so this runs over every gradient the server receives.
bool AllFinite(const float* values, size_t n) {
  uint32_t bad = 0;
  for (size_t i = 0; i < n; ++i) {
    uint32_t bits;
    std::memcpy(&bits, values + i, sizeof(bits));
    bad |= static_cast<uint32_t>((bits & 0x7f800000u) == 0x7f800000u);
  }
  return bad == 0;
}

}  // namespace

RequestChecks::RequestChecks(const JobConfig& config, uint32_t shard)
    : shard_(shard),
      num_shards_(std::max(config.num_shards(), 1u)),
      num_workers_(config.num_workers()) {
  for (const TableSpec& spec : config.tables()) specs_.try_emplace(spec.id(), spec);
}

const TableSpec* RequestChecks::spec(uint32_t id) const {
  auto it = specs_.find(id);
  return it == specs_.end() ? nullptr : &it->second;
}

absl::Status RequestChecks::CheckBlock(const char* op, int index, const RowBlock& block,
                                       size_t num_values) const {
  const TableSpec* t = spec(block.table());
  if (t == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat(op, " block ", index, ": unknown table id ", block.table()));
  }
  if (block.keys_delta()) {
    return absl::InvalidArgumentError(absl::StrCat(
        op, " block ", index, ": delta-encoded keys are for Stream, which restores them first"));
  }
  const size_t want = static_cast<size_t>(block.keys_size()) * t->width();
  if (num_values != want) {
    return absl::InvalidArgumentError(absl::StrCat(
        op, " block ", index, ": table ", block.table(), " (", t->name(), ") has width ",
        t->width(), ", so ", block.keys_size(), " keys need ", want, " values, got ", num_values));
  }
  if (num_shards_ > 1) {
    for (uint64_t key : block.keys()) {
      const uint32_t owner = ShardOf(block.table(), key, num_shards_);
      if (owner != shard_) {
        return absl::InvalidArgumentError(
            absl::StrCat(op, " block ", index, ": key ", key, " of table ", block.table(),
                         " belongs to shard ", owner, ", not ", shard_));
      }
    }
  }
  return absl::OkStatus();
}

absl::Status RequestChecks::CheckPull(const PullRequest& request) const {
  uint64_t floats = 0;
  for (int i = 0; i < request.blocks_size(); ++i) {
    const RowBlock& block = request.blocks(i);
    if (block.values_size() != 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "pull block ", i, ": a pull request carries no values, got ", block.values_size()));
    }
    // Checked as if the values were there: the response will hold them.
    const TableSpec* t = spec(block.table());
    const size_t width = t == nullptr ? 0 : t->width();
    if (absl::Status s = CheckBlock("pull", i, block, block.keys_size() * width); !s.ok()) return s;
    floats += block.keys_size() * width;
  }
  if (floats > max_request_floats_) {
    return absl::InvalidArgumentError(absl::StrCat("pull of ", floats,
                                                   " floats is over the limit of ",
                                                   max_request_floats_, "; split the request"));
  }
  return absl::OkStatus();
}

absl::Status RequestChecks::CheckPush(const PushRequest& request) const {
  if (request.worker_id() >= num_workers_) {
    return absl::InvalidArgumentError(absl::StrCat("push from worker ", request.worker_id(),
                                                   ", but num_workers is ", num_workers_));
  }
  uint64_t floats = 0;
  for (const RowBlock& block : request.blocks()) floats += block.values_size();
  if (floats > max_request_floats_) {
    return absl::InvalidArgumentError(absl::StrCat("push of ", floats,
                                                   " floats is over the limit of ",
                                                   max_request_floats_, "; split the request"));
  }
  for (int i = 0; i < request.blocks_size(); ++i) {
    const RowBlock& block = request.blocks(i);
    if (absl::Status s = CheckBlock("push", i, block, block.values_size()); !s.ok()) return s;
    if (AllFinite(block.values().data(), static_cast<size_t>(block.values_size()))) continue;
    for (int j = 0; j < block.values_size(); ++j) {
      if (!std::isfinite(block.values(j))) {
        return absl::InvalidArgumentError(
            absl::StrCat("push block ", i, ": table ", block.table(), " key ",
                         block.keys(j / static_cast<int>(spec(block.table())->width())),
                         " has gradient ", block.values(j)));
      }
    }
  }
  return absl::OkStatus();
}

absl::Status CheckCheckpointName(const std::string& name) {
  if (name.empty() || name == "." || name == ".." || name.find('/') != std::string::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("checkpoint name '", name, "' is not a plain directory name"));
  }
  return absl::OkStatus();
}

absl::Status CheckRestoreWorkers(const RestoreRequest& request, uint32_t num_workers) {
  std::vector<bool> seen(num_workers, false);
  for (uint32_t w : request.workers()) {
    if (w >= seen.size() || seen[w]) {
      return absl::InvalidArgumentError(
          absl::StrCat("worker ", w, " is repeated or not below num_workers ", seen.size()));
    }
    seen[w] = true;
  }
  if (request.workers().empty()) return absl::InvalidArgumentError("no workers");
  return absl::OkStatus();
}

}  // namespace psrec
