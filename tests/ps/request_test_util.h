// What the tests of a shard's requests share: blocks of rows written inline, and the pull and push
// requests that carry them. Header-only: tests/CMakeLists.txt builds each *_test.cc alone.
#ifndef PSREC_TESTS_PS_REQUEST_TEST_UTIL_H_
#define PSREC_TESTS_PS_REQUEST_TEST_UTIL_H_

#include <cstdint>
#include <vector>

#include "google/protobuf/repeated_ptr_field.h"
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

}  // namespace request_testing
}  // namespace psrec

#endif  // PSREC_TESTS_PS_REQUEST_TEST_UTIL_H_
