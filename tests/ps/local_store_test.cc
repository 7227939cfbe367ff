#include "ps/local_store.h"

#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "common/model.h"
#include "common/optimizer_config.h"
#include "common/rng.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/ps/request_test_util.h"

namespace psrec {
namespace {

using ::psrec::request_testing::TwoTables;
using ::testing::HasSubstr;

constexpr uint64_t kSeed = 17;

OptimizerConfig Sgd(float lr) {
  OptimizerConfig config;
  config.set_kind(SGD);
  config.set_lr(lr);
  return config;
}

std::unique_ptr<LocalStore> MustCreate() {
  auto store = LocalStore::Create(TwoTables(), Sgd(1.0f), kSeed);
  EXPECT_TRUE(store.ok()) << store.status();
  return std::move(store).value();
}

std::vector<float> PullRow(LocalStore& store, uint32_t table, uint64_t key) {
  std::vector<float> out(store.table(table)->width());
  const uint64_t keys[] = {key};
  const PullBlock block{table, keys, absl::MakeSpan(out)};
  EXPECT_TRUE(store.Pull({&block, 1}).ok());
  return out;
}

std::vector<float> Init(const LocalStore& store, uint32_t table, uint64_t key) {
  std::vector<float> out(store.table(table)->width());
  InitRow(store.table(table)->spec(), kSeed, key, absl::MakeSpan(out));
  return out;
}

TEST(LocalStoreTest, PushThenPullAcrossTables) {
  std::unique_ptr<LocalStore> store = MustCreate();
  const uint64_t users[] = {1, 2};
  const float user_grads[] = {1, 2, 3, 4, 5, 6};
  const uint64_t items[] = {8};
  const float item_grads[] = {0.5f};
  const PushBlock push[] = {{0, users, user_grads}, {5, items, item_grads}};
  ASSERT_TRUE(store->Push(push).ok());

  std::vector<float> user_values(6), item_values(2);
  const uint64_t pulled_items[] = {8, 9};
  const PullBlock pull[] = {{0, users, absl::MakeSpan(user_values)},
                            {5, pulled_items, absl::MakeSpan(item_values)}};
  ASSERT_TRUE(store->Pull(pull).ok());
  const std::vector<float> u1 = Init(*store, 0, 1), u2 = Init(*store, 0, 2);
  EXPECT_THAT(user_values, testing::Pointwise(testing::FloatNear(1e-6f),
                                              std::vector<float>{u1[0] - 1, u1[1] - 2, u1[2] - 3,
                                                                 u2[0] - 4, u2[1] - 5, u2[2] - 6}));
  EXPECT_THAT(item_values, testing::ElementsAre(-0.5f, 0.0f));
  EXPECT_EQ(store->table(0)->num_rows(), 2u);
  EXPECT_EQ(store->table(5)->num_rows(), 1u);
}

// ParamStore's default StartPull and Wait: up to kMaxPullsInFlight pulls, their statuses taken in
// order, and one more refused.
TEST(LocalStoreTest, StartedPullsAreWaitedForInOrder) {
  std::unique_ptr<LocalStore> store = MustCreate();
  const uint64_t key[] = {3};
  std::vector<float> row(store->table(0)->width());
  const PullBlock good{0, key, absl::MakeSpan(row)};
  const PullBlock unknown{9, key, absl::MakeSpan(row)};
  ASSERT_TRUE(store->StartPull({&unknown, 1}).ok());
  ASSERT_TRUE(store->StartPull({&good, 1}).ok());
  EXPECT_TRUE(absl::IsFailedPrecondition(store->StartPull({&good, 1})));
  EXPECT_TRUE(absl::IsInvalidArgument(store->Wait()));
  EXPECT_TRUE(store->Wait().ok());
  EXPECT_EQ(row, Init(*store, 0, 3));
  EXPECT_TRUE(store->Wait().ok());  // none left
}

TEST(LocalStoreTest, TableLookup) {
  std::unique_ptr<LocalStore> store = MustCreate();
  ASSERT_NE(store->table(5), nullptr);
  EXPECT_EQ(store->table(5)->spec().name(), "item_bias");
  EXPECT_EQ(store->table(1), nullptr);     // a gap
  EXPECT_EQ(store->table(6), nullptr);     // past the last
  EXPECT_EQ(store->table(4000), nullptr);  // far past
}

TEST(LocalStoreTest, EmptyStoreAndEmptyCalls) {
  auto store = LocalStore::Create({}, Sgd(0.1f), kSeed);
  ASSERT_TRUE(store.ok()) << store.status();
  EXPECT_TRUE((*store)->Pull({}).ok());
  EXPECT_TRUE((*store)->Push({}).ok());
}

void ExpectCreateError(const google::protobuf::RepeatedPtrField<TableSpec>& tables,
                       const OptimizerConfig& optimizer, const std::string& message) {
  auto store = LocalStore::Create(tables, optimizer, kSeed);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(store.status().message()), HasSubstr(message));
}

TEST(LocalStoreCreateTest, RejectsDuplicateId) {
  auto tables = TwoTables();
  tables.Mutable(1)->set_id(0);
  ExpectCreateError(tables, Sgd(0.1f), "table id 0 is used by both user and item_bias");
}

TEST(LocalStoreCreateTest, RejectsZeroWidth) {
  auto tables = TwoTables();
  tables.Mutable(1)->set_width(0);
  ExpectCreateError(tables, Sgd(0.1f), "table 5 (item_bias): width must be > 0");
}

TEST(LocalStoreCreateTest, RejectsIdAtTheLimitAndAcceptsOneBelow) {
  auto tables = TwoTables();
  tables.Mutable(1)->set_id(kMaxTableId);
  ExpectCreateError(tables, Sgd(0.1f), "table 1024 (item_bias): id must be below 1024");
  tables.Mutable(1)->set_id(kMaxTableId - 1);
  EXPECT_TRUE(LocalStore::Create(tables, Sgd(0.1f), kSeed).ok());
}

TEST(LocalStoreCreateTest, RejectsInvalidOptimizer) {
  ExpectCreateError(TwoTables(), Sgd(0.0f), "optimizer.lr");
  ExpectCreateError(TwoTables(), OptimizerConfig(), "optimizer.kind");
}

TEST(LocalStoreTest, PullErrors) {
  std::unique_ptr<LocalStore> store = MustCreate();
  const uint64_t keys[] = {1, 2};
  std::vector<float> values(6);
  const PullBlock unknown[] = {{3, keys, absl::MakeSpan(values)}};
  absl::Status status = store->Pull(unknown);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()), HasSubstr("pull block 0: unknown table id 3"));

  const PullBlock short_values[] = {{0, keys, absl::MakeSpan(values)},
                                    {5, keys, absl::MakeSpan(values).subspan(0, 1)}};
  status = store->Pull(short_values);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()),
              HasSubstr("pull block 1: table 5 (item_bias) has width 1, so 2 keys need 2 values, "
                        "got 1"));
}

// A push with one valid and one invalid block fails and leaves the valid block's rows as they were.
TEST(LocalStoreTest, FailedPushChangesNoRow) {
  std::unique_ptr<LocalStore> store = MustCreate();
  const uint64_t keys[] = {1};
  const float grads[] = {1, 1, 1};
  const PushBlock first[] = {{0, keys, grads}};
  ASSERT_TRUE(store->Push(first).ok());  // row 1 exists now
  const std::vector<float> before = PullRow(*store, 0, 1);
  const uint64_t new_keys[] = {2};

  const PushBlock wrong_size[] = {
      {0, keys, grads}, {0, new_keys, grads}, {5, keys, grads}};  // width 1: 3 grads for 1 key
  absl::Status status = store->Push(wrong_size);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()),
              HasSubstr("push block 2: table 5 (item_bias) has width 1, so 1 keys need 1 grads, "
                        "got 3"));

  const PushBlock unknown[] = {{0, keys, grads}, {7, keys, grads}};
  status = store->Push(unknown);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()), HasSubstr("push block 1: unknown table id 7"));

  EXPECT_EQ(PullRow(*store, 0, 1), before);
  EXPECT_EQ(store->table(0)->num_rows(), 1u);  // key 2 was not created
  EXPECT_EQ(store->table(5)->num_rows(), 0u);
}

TEST(LocalStoreTest, InsertRowSetsValuesStepAndState) {
  auto store = LocalStore::Create(TwoTables(), Sgd(1.0f), kSeed);
  ASSERT_TRUE(store.ok());
  const float values[] = {1.5f, -2.0f, 0.25f};
  ASSERT_TRUE((*store)->InsertRow(0, 42, 9, values, {}).ok());
  EXPECT_THAT(PullRow(**store, 0, 42), ::testing::ElementsAreArray(values));
  EXPECT_EQ((*store)->table(0)->num_rows(), 1u);
  uint32_t step = 0;
  (*store)->table(0)->ForEachRow([&](uint64_t, uint32_t s, auto, auto) { step = s; });
  EXPECT_EQ(step, 9u);
}

TEST(LocalStoreTest, InsertRowErrorsChangeNoRow) {
  auto store = MustCreate();
  const float three[] = {1, 2, 3};
  const float one[] = {1};
  absl::Status status = store->InsertRow(7, 1, 0, three, {});
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()), HasSubstr("unknown table id 7"));
  status = store->InsertRow(5, 1, 0, three, {});
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()),
              HasSubstr("3 values and 0 state floats, but the table has width 1 and 0"));
  status = store->InsertRow(5, 1, 0, one, one);  // SGD keeps no state
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store->table(5)->num_rows(), 0u);
  EXPECT_EQ(store->table(0)->num_rows(), 0u);
}

// The dense weights split over rows (common/model.h's DenseRows) train like one row: the same
// weights go in, Adam with L2 applies the same gradients push after push (element-wise, and every
// row's step count is the one row's), and pulling every row gives back the weights followed by the
// padding: bit for bit, but for the last 1361 % 4 = 1 weight, which one row updates with a scalar
// square root and the rows in a SIMD packet (a few ulp apart).
TEST(LocalStoreTest, DenseRowsTrainBitwiseLikeOneRow) {
  JobConfig config;
  config.set_model(MLP);
  config.set_dim(30);
  config.set_hidden(40);  // 40 * 32 + 81 = 1361 weights: 3 rows of 456, 7 floats of padding
  config.set_l2_dense(0.01f);
  FillTableSpecs(&config);
  const DenseRows split = SplitDense(1361);
  ASSERT_EQ(split.keys.size(), 3u);
  ASSERT_EQ(config.tables(kDenseTable).width(), split.width);
  google::protobuf::RepeatedPtrField<TableSpec> one_row = config.tables();
  one_row.Mutable(kDenseTable)->set_width(1361);
  OptimizerConfig adam;
  adam.set_kind(ADAM);
  adam.set_lr(0.01f);
  ASSERT_TRUE(ResolveOptimizerConfig(&adam).ok());
  auto chunked = LocalStore::Create(config.tables(), adam, kSeed);
  auto whole = LocalStore::Create(one_row, adam, kSeed);
  ASSERT_TRUE(chunked.ok() && whole.ok());

  Rng rng(3);
  std::vector<float> weights(split.floats(), 0.0f), state(2 * split.width, 0.0f);
  for (size_t i = 0; i < 1361; ++i) weights[i] = rng.Unit() - 0.5f;
  for (size_t j = 0; j < split.keys.size(); ++j) {
    const auto row = absl::MakeConstSpan(weights).subspan(j * split.width, split.width);
    ASSERT_TRUE((*chunked)->InsertRow(kDenseTable, split.keys[j], 0, row, state).ok());
  }
  const std::vector<float> whole_state(2 * 1361, 0.0f);
  ASSERT_TRUE((*whole)
                  ->InsertRow(kDenseTable, kDenseKey, 0, absl::MakeConstSpan(weights).first(1361),
                              whole_state)
                  .ok());
  std::vector<float> grads(split.floats(), 0.0f);
  for (int step = 0; step < 5; ++step) {
    for (size_t i = 0; i < 1361; ++i) grads[i] = rng.Unit() - 0.5f;
    const PushBlock rows{kDenseTable, split.keys, grads};
    const uint64_t one_key[] = {kDenseKey};
    const PushBlock row{kDenseTable, one_key, absl::MakeConstSpan(grads).first(1361)};
    ASSERT_TRUE((*chunked)->Push({&rows, 1}).ok());
    ASSERT_TRUE((*whole)->Push({&row, 1}).ok());
  }
  std::vector<float> pulled(split.floats());
  const PullBlock block{kDenseTable, split.keys, absl::MakeSpan(pulled)};
  ASSERT_TRUE((*chunked)->Pull({&block, 1}).ok());
  const std::vector<float> expected = PullRow(**whole, kDenseTable, kDenseKey);
  EXPECT_EQ(std::memcmp(pulled.data(), expected.data(), 1360 * sizeof(float)), 0);
  EXPECT_FLOAT_EQ(pulled[1360], expected[1360]);
  EXPECT_NE(expected[0], weights[0]);  // the pushes moved the weights
}

}  // namespace
}  // namespace psrec
