// What the tests of a shard's requests share: two tables and a job over them, blocks of rows
// written inline, and the pull and push requests that carry them. Header-only: tests/CMakeLists.txt
// builds each *_test.cc alone.
#ifndef PSREC_TESTS_PS_REQUEST_TEST_UTIL_H_
#define PSREC_TESTS_PS_REQUEST_TEST_UTIL_H_

#include <cstdint>
#include <vector>

#include "google/protobuf/repeated_ptr_field.h"
#include "proto/config.pb.h"
#include "proto/ps.pb.h"

namespace psrec {
namespace request_testing {

struct Block {
  uint32_t table;
  std::vector<uint64_t> keys;
  std::vector<float> values;
};

inline void AddBlocks(const std::vector<Block>& blocks,
                      google::protobuf::RepeatedPtrField<RowBlock>* out) {
  for (const Block& b : blocks) {
    RowBlock* block = out->Add();
    block->set_table(b.table);
    block->mutable_keys()->Add(b.keys.begin(), b.keys.end());
    block->mutable_values()->Add(b.values.begin(), b.values.end());
  }
}

inline PushRequest MakePush(uint32_t worker, uint64_t clock, const std::vector<Block>& blocks,
                            uint64_t generation = 0) {
  PushRequest request;
  request.set_worker_id(worker);
  request.set_clock(clock);
  request.set_generation(generation);
  AddBlocks(blocks, request.mutable_blocks());
  return request;
}

inline PullRequest MakePull(const std::vector<Block>& blocks, uint64_t clock = 0) {
  PullRequest request;
  request.set_clock(clock);
  AddBlocks(blocks, request.mutable_blocks());
  return request;
}

// The two tables of the shard tests: kUser (width 3, uniform at scale 0.1) and kBias (width 1,
// zeros).
constexpr uint32_t kUser = 0;
constexpr uint32_t kBias = 5;

inline google::protobuf::RepeatedPtrField<TableSpec> TwoTables() {
  google::protobuf::RepeatedPtrField<TableSpec> tables;
  TableSpec* user = tables.Add();
  user->set_id(kUser);
  user->set_name("user");
  user->set_width(3);
  user->set_init(UNIFORM);
  user->set_init_scale(0.1f);
  TableSpec* bias = tables.Add();
  bias->set_id(kBias);
  bias->set_name("item_bias");
  bias->set_width(1);
  bias->set_init(ZEROS);
  return tables;
}

// A job of one shard and `workers` workers over TwoTables(), seeded `seed`, whose optimizer is
// `kind` at rate `lr`.
inline JobConfig OneShardJob(uint64_t seed, Consistency consistency, uint32_t workers,
                             OptimizerKind kind, float lr) {
  JobConfig config;
  config.set_seed(seed);
  config.set_num_shards(1);
  config.set_num_workers(workers);
  config.set_consistency(consistency);
  config.mutable_optimizer()->set_kind(kind);
  config.mutable_optimizer()->set_lr(lr);
  *config.mutable_tables() = TwoTables();
  return config;
}

}  // namespace request_testing
}  // namespace psrec

#endif  // PSREC_TESTS_PS_REQUEST_TEST_UTIL_H_
