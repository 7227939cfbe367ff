#include "ps/table.h"

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "ps/optimizer.h"
#include "ps/sharded_table.h"

namespace psrec {
namespace {

using ::testing::Each;
using ::testing::ElementsAreArray;
using ::testing::FloatNear;
using ::testing::Pointwise;

TableSpec Spec(uint32_t id, uint32_t width, InitKind init, float scale, float l2 = 0.0f) {
  TableSpec spec;
  spec.set_id(id);
  spec.set_name("t" + std::to_string(id));
  spec.set_width(width);
  spec.set_init(init);
  spec.set_init_scale(scale);
  spec.set_l2(l2);
  return spec;
}

OptimizerConfig Resolved(OptimizerKind kind, float lr) {
  OptimizerConfig config;
  config.set_kind(kind);
  config.set_lr(lr);
  EXPECT_TRUE(ResolveOptimizerConfig(&config).ok());
  return config;
}

std::vector<float> Init(const TableSpec& spec, uint64_t seed, uint64_t key) {
  std::vector<float> out(spec.width());
  InitRow(spec, seed, key, absl::MakeSpan(out));
  return out;
}

std::vector<float> PullOne(const Table& table, uint64_t key) {
  std::vector<float> out(table.width());
  const uint64_t keys[] = {key};
  table.Pull(keys, absl::MakeSpan(out));
  return out;
}

TEST(InitRowTest, SameInputsSameValues) {
  const TableSpec spec = Spec(3, 16, UNIFORM, 0.05f);
  EXPECT_EQ(Init(spec, 42, 7), Init(spec, 42, 7));
  // A different name, l2 or width does not move the first elements: only (seed, id, key) matter.
  TableSpec other = Spec(3, 8, UNIFORM, 0.05f, 0.5f);
  other.set_name("renamed");
  const std::vector<float> wide = Init(spec, 42, 7);
  EXPECT_THAT(Init(other, 42, 7), ElementsAreArray(wide.begin(), wide.begin() + 8));
}

TEST(InitRowTest, DifferentKeyTableOrSeedDifferentValues) {
  const TableSpec spec = Spec(3, 16, UNIFORM, 0.05f);
  const std::vector<float> base = Init(spec, 42, 7);
  EXPECT_NE(Init(spec, 42, 8), base);
  EXPECT_NE(Init(Spec(4, 16, UNIFORM, 0.05f), 42, 7), base);
  EXPECT_NE(Init(spec, 43, 7), base);
  // Elements of one row differ from each other too.
  EXPECT_NE(base[0], base[1]);
}

TEST(InitRowTest, UniformStaysWithinScaleAndCoversIt) {
  const TableSpec spec = Spec(1, 64, UNIFORM, 0.25f);
  float lo = 1.0f, hi = -1.0f;
  double sum = 0.0;
  for (uint64_t key = 0; key < 200; ++key) {
    for (float x : Init(spec, 9, key)) {
      ASSERT_GE(x, -0.25f);
      ASSERT_LE(x, 0.25f);
      lo = std::min(lo, x);
      hi = std::max(hi, x);
      sum += x;
    }
  }
  EXPECT_LT(lo, -0.24f);
  EXPECT_GT(hi, 0.24f);
  EXPECT_NEAR(sum / (200 * 64), 0.0, 0.01);  // mean of 12800 draws, sd of the mean ~0.0013
}

TEST(InitRowTest, ZerosAndUnspecifiedAreZero) {
  std::vector<float> out(5, 1.0f);
  InitRow(Spec(1, 5, ZEROS, 0.5f), 1, 2, absl::MakeSpan(out));
  EXPECT_THAT(out, Each(0.0f));
  out.assign(5, 1.0f);
  InitRow(Spec(1, 5, INIT_UNSPECIFIED, 0.5f), 1, 2, absl::MakeSpan(out));
  EXPECT_THAT(out, Each(0.0f));
}

TEST(TableTest, PullOfAbsentRowIsItsInitialValueAndCreatesNothing) {
  const TableSpec spec = Spec(2, 6, UNIFORM, 0.1f);
  Table table(spec, Resolved(SGD, 0.1f), 5);
  EXPECT_EQ(PullOne(table, 11), Init(spec, 5, 11));
  EXPECT_EQ(table.num_rows(), 0u);
  EXPECT_EQ(table.bytes(), 0u);
}

TEST(TableTest, PushCreatesTheRowFromItsInitialValue) {
  const TableSpec spec = Spec(2, 3, UNIFORM, 0.1f);
  Table table(spec, Resolved(SGD, 0.5f), 5);
  const uint64_t keys[] = {11};
  const float grads[] = {1.0f, -2.0f, 0.0f};
  table.Push(keys, grads);
  EXPECT_EQ(table.num_rows(), 1u);
  const std::vector<float> init = Init(spec, 5, 11);
  const std::vector<float> want = {init[0] - 0.5f, init[1] + 1.0f, init[2]};
  EXPECT_THAT(PullOne(table, 11), Pointwise(FloatNear(1e-7f), want));
  // Other rows still read as their initial value.
  EXPECT_EQ(PullOne(table, 12), Init(spec, 5, 12));
}

TEST(TableTest, PullMixesPresentAndAbsentRowsInKeyOrder) {
  const TableSpec spec = Spec(2, 2, UNIFORM, 0.1f);
  Table table(spec, Resolved(SGD, 1.0f), 5);
  const uint64_t pushed[] = {20};
  const float grads[] = {1.0f, 1.0f};
  table.Push(pushed, grads);
  const uint64_t keys[] = {10, 20, 30};
  std::vector<float> out(6);
  table.Pull(keys, absl::MakeSpan(out));
  const std::vector<float> a = Init(spec, 5, 10), b = Init(spec, 5, 20), c = Init(spec, 5, 30);
  EXPECT_THAT(out, Pointwise(FloatNear(1e-7f),
                             std::vector<float>{a[0], a[1], b[0] - 1, b[1] - 1, c[0], c[1]}));
}

// PushAt and PullAt touch only the positions given, in their order, and give what Push and Pull of
// the same keys give, bit for bit (Adam, a repeated key).
TEST(TableTest, AtPositionsIsTheSameAsTheKeysThere) {
  const TableSpec spec = Spec(2, 5, UNIFORM, 0.1f);
  Table at(spec, Resolved(ADAM, 0.01f), 5);
  Table whole(spec, Resolved(ADAM, 0.01f), 5);
  const uint64_t keys[] = {7, 8, 9, 7, 10};
  std::vector<float> grads(25);
  for (size_t i = 0; i < grads.size(); ++i) grads[i] = 0.1f * static_cast<float>(i) - 1.0f;
  const uint32_t positions[] = {3, 0, 2};  // 7 (its second gradient), then 7, then 9
  at.PushAt(keys, positions, grads);
  const uint64_t picked[] = {7, 7, 9};
  std::vector<float> picked_grads;
  for (uint32_t p : positions) {
    picked_grads.insert(picked_grads.end(), grads.begin() + p * 5, grads.begin() + (p + 1) * 5);
  }
  whole.Push(picked, picked_grads);
  EXPECT_EQ(at.num_rows(), 2u);
  std::vector<float> out(25, -9.0f);
  at.PullAt(keys, positions, absl::MakeSpan(out));
  EXPECT_EQ(std::vector<float>(out.begin() + 15, out.begin() + 20), PullOne(whole, 7));
  EXPECT_EQ(std::vector<float>(out.begin(), out.begin() + 5), PullOne(whole, 7));
  EXPECT_EQ(std::vector<float>(out.begin() + 10, out.begin() + 15), PullOne(whole, 9));
  // The positions not given are left as they were.
  EXPECT_EQ(std::vector<float>(out.begin() + 5, out.begin() + 10), std::vector<float>(5, -9.0f));
  EXPECT_EQ(std::vector<float>(out.begin() + 20, out.end()), std::vector<float>(5, -9.0f));
}

TEST(TableTest, UsesTheSpecsL2) {
  const TableSpec spec = Spec(1, 1, ZEROS, 0.0f, 0.5f);
  Table table(spec, Resolved(SGD, 0.1f), 0);
  const uint64_t keys[] = {1};
  const float grads[] = {1.0f};
  table.Push(keys, grads);  // w = 0 - 0.1 * 1 = -0.1
  table.Push(keys, grads);  // g' = 1 + 0.5 * -0.1 = 0.95
  EXPECT_NEAR(PullOne(table, 1)[0], -0.195f, 1e-7f);
}

TEST(TableTest, RepeatedKeyInOnePushIsAppliedOncePerOccurrence) {
  const TableSpec spec = Spec(1, 4, UNIFORM, 0.1f);
  const OptimizerConfig adam = Resolved(ADAM, 0.01f);
  Table together(spec, adam, 3);
  Table apart(spec, adam, 3);
  const std::vector<float> g1 = {0.5f, -1.0f, 2.0f, 0.0f};
  const std::vector<float> g2 = {-0.25f, 0.5f, 1.0f, 3.0f};
  std::vector<float> both = g1;
  both.insert(both.end(), g2.begin(), g2.end());
  const uint64_t twice[] = {9, 9};
  together.Push(twice, both);
  const uint64_t once[] = {9};
  apart.Push(once, g1);
  apart.Push(once, g2);
  EXPECT_EQ(together.num_rows(), 1u);
  EXPECT_EQ(PullOne(together, 9), PullOne(apart, 9));
  EXPECT_NE(PullOne(together, 9), PullOne(Table(spec, adam, 3), 9));
}

// Lazy Adam: a row's first push is bias-corrected as t = 1 however many times other rows were
// pushed.
TEST(TableTest, AdamStepCountIsPerRow) {
  const TableSpec spec = Spec(1, 1, ZEROS, 0.0f);
  Table table(spec, Resolved(ADAM, 0.01f), 0);
  const uint64_t old_key[] = {1};
  const float grad[] = {0.5f};
  for (int i = 0; i < 5; ++i) table.Push(old_key, grad);
  const uint64_t new_key[] = {2};
  table.Push(new_key, grad);
  EXPECT_NEAR(PullOne(table, 2)[0], -0.01f, 1e-7f);  // t = 1: m^ = 0.5, v^ = 0.25
}

TEST(TableTest, NumRowsAndBytes) {
  Table adam(Spec(1, 4, ZEROS, 0.0f), Resolved(ADAM, 0.01f), 0);
  const uint64_t keys[] = {1, 2, 3, 2};
  const std::vector<float> grads(16, 1.0f);
  adam.Push(keys, grads);
  EXPECT_EQ(adam.num_rows(), 3u);
  EXPECT_EQ(adam.bytes(), 3 * (4 * 4 + 2 * 4 * 4 + 4));  // values, m and v, step

  Table adagrad(Spec(1, 4, ZEROS, 0.0f), Resolved(ADAGRAD, 0.01f), 0);
  adagrad.Push(keys, grads);
  EXPECT_EQ(adagrad.bytes(), 3 * (4 * 4 + 4 * 4 + 4));

  Table sgd(Spec(1, 4, ZEROS, 0.0f), Resolved(SGD, 0.01f), 0);
  sgd.Push(keys, grads);
  EXPECT_EQ(sgd.bytes(), 3 * (4 * 4 + 4));
}

TEST(TableTest, EmptyPullAndPushAreNoOps) {
  Table table(Spec(1, 4, UNIFORM, 0.1f), Resolved(SGD, 0.01f), 0);
  table.Pull({}, {});
  table.Push({}, {});
  EXPECT_EQ(table.num_rows(), 0u);
}

TEST(TableTest, ManyRowsSurviveGrowth) {
  // Enough rows to reallocate the arrays several times; every row must keep its own value.
  const TableSpec spec = Spec(1, 3, UNIFORM, 0.1f);
  Table table(spec, Resolved(ADAGRAD, 0.1f), 1);
  std::vector<uint64_t> keys;
  for (uint64_t k = 0; k < 5000; ++k) keys.push_back(k * 7919);
  table.Push(keys, std::vector<float>(keys.size() * 3, 0.0f));  // zero gradient: values unchanged
  EXPECT_EQ(table.num_rows(), 5000u);
  for (uint64_t key : keys) ASSERT_EQ(PullOne(table, key), Init(spec, 1, key)) << key;
}

// One visited row, copied out of the visitor's spans.
struct VisitedRow {
  uint32_t step = 0;
  std::vector<float> values, state;
  int visits = 0;
};

template <typename T>
absl::flat_hash_map<uint64_t, VisitedRow> Visit(const T& table) {
  absl::flat_hash_map<uint64_t, VisitedRow> rows;
  table.ForEachRow([&](uint64_t key, uint32_t step, absl::Span<const float> values,
                       absl::Span<const float> state) {
    VisitedRow& row = rows[key];
    row.step = step;
    row.values.assign(values.begin(), values.end());
    row.state.assign(state.begin(), state.end());
    ++row.visits;
  });
  return rows;
}

TEST(TableTest, StateFloatsPerRowFollowsTheOptimizer) {
  const TableSpec spec = Spec(1, 5, ZEROS, 0.0f);
  EXPECT_EQ(Table(spec, Resolved(SGD, 0.1f), 0).state_floats_per_row(), 0u);
  EXPECT_EQ(Table(spec, Resolved(ADAGRAD, 0.1f), 0).state_floats_per_row(), 5u);
  EXPECT_EQ(Table(spec, Resolved(ADAM, 0.1f), 0).state_floats_per_row(), 10u);
  EXPECT_EQ(ShardedTable(spec, Resolved(ADAM, 0.1f), 0).state_floats_per_row(), 10u);
}

TEST(TableTest, ForEachRowVisitsEveryCreatedRowOnce) {
  Table table(Spec(1, 2, UNIFORM, 0.1f), Resolved(ADAM, 0.01f), 4);
  EXPECT_TRUE(Visit(table).empty());
  const uint64_t keys[] = {5, 9, 5, 100, 5};
  const float grads[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
  table.Push(keys, grads);
  const auto rows = Visit(table);
  ASSERT_EQ(rows.size(), 3u);
  for (const auto& [key, steps] : {std::pair<uint64_t, uint32_t>{5, 3}, {9, 1}, {100, 1}}) {
    ASSERT_TRUE(rows.contains(key)) << key;
    const VisitedRow& row = rows.at(key);
    EXPECT_EQ(row.visits, 1);
    EXPECT_EQ(row.step, steps) << key;
    EXPECT_EQ(row.values, PullOne(table, key)) << key;
    EXPECT_EQ(row.state.size(), 4u);
  }
}

TEST(TableTest, InsertRowCreatesAndOverwritesExactly) {
  Table table(Spec(1, 2, UNIFORM, 0.1f), Resolved(ADAM, 0.01f), 4);
  const float values[] = {0.5f, -0.25f};
  const float state[] = {1, 2, 3, 4};
  table.InsertRow(7, 11, values, state);
  EXPECT_EQ(table.num_rows(), 1u);
  EXPECT_THAT(PullOne(table, 7), ElementsAreArray(values));
  auto rows = Visit(table);
  EXPECT_EQ(rows[7].step, 11u);
  EXPECT_THAT(rows[7].state, ElementsAreArray(state));

  const float values2[] = {3, 4};
  const float state2[] = {5, 6, 7, 8};
  table.InsertRow(7, 2, values2, state2);
  EXPECT_EQ(table.num_rows(), 1u);
  EXPECT_THAT(PullOne(table, 7), ElementsAreArray(values2));
  rows = Visit(table);
  EXPECT_EQ(rows[7].step, 2u);
  EXPECT_THAT(rows[7].state, ElementsAreArray(state2));
}

// A row copied with its step and state into a fresh table continues exactly as the original.
TEST(TableTest, InsertedRowContinuesLikeTheOriginal) {
  for (OptimizerKind kind : {SGD, ADAGRAD, ADAM}) {
    const TableSpec spec = Spec(2, 3, UNIFORM, 0.1f, 0.01f);
    Table original(spec, Resolved(kind, 0.05f), 8);
    const uint64_t keys[] = {1, 2, 1, 3};
    std::vector<float> grads(12);
    for (size_t i = 0; i < grads.size(); ++i) grads[i] = 0.1f * static_cast<float>(i) - 0.5f;
    original.Push(keys, grads);
    Table copy(spec, Resolved(kind, 0.05f), 8);
    original.ForEachRow(
        [&](uint64_t key, uint32_t step, absl::Span<const float> values,
            absl::Span<const float> state) { copy.InsertRow(key, step, values, state); });
    original.Push(keys, grads);
    copy.Push(keys, grads);
    for (uint64_t key : {1, 2, 3, 4}) {
      EXPECT_EQ(PullOne(original, key), PullOne(copy, key)) << "kind " << kind << " key " << key;
    }
    const auto a = Visit(original), b = Visit(copy);
    for (uint64_t key : {1, 2, 3}) {
      EXPECT_EQ(a.at(key).step, b.at(key).step);
      EXPECT_EQ(a.at(key).state, b.at(key).state);
    }
  }
}

TEST(ShardedTableTest, ForEachRowAndInsertRowCoverEverySubShard) {
  const TableSpec spec = Spec(3, 2, UNIFORM, 0.1f);
  ShardedTable table(spec, Resolved(ADAGRAD, 0.1f), 5);
  std::vector<uint64_t> keys;
  for (uint64_t k = 0; k < 500; ++k) keys.push_back(k * 31);
  std::vector<float> grads(keys.size() * 2, 0.5f);
  table.Push(keys, grads);
  const auto rows = Visit(table);
  ASSERT_EQ(rows.size(), keys.size());
  ShardedTable copy(spec, Resolved(ADAGRAD, 0.1f), 5);
  for (const auto& [key, row] : rows) {
    EXPECT_EQ(row.visits, 1);
    EXPECT_EQ(row.step, 1u);
    copy.InsertRow(key, row.step, row.values, row.state);
  }
  uint64_t num_rows, bytes;
  copy.Sizes(&num_rows, &bytes);
  EXPECT_EQ(num_rows, keys.size());
  std::vector<float> a(keys.size() * 2), b(keys.size() * 2);
  table.Pull(keys, absl::MakeSpan(a));
  copy.Pull(keys, absl::MakeSpan(b));
  EXPECT_EQ(a, b);
  for (const auto& [key, row] : Visit(copy)) EXPECT_EQ(row.state, rows.at(key).state);
}

}  // namespace
}  // namespace psrec

namespace psrec {
namespace {

// Issue 9: what a row costs, keys and hash index included, at any table size. A dim-30 Adam row
// holds 120 bytes of values, 240 of state, a 4-byte step count and an 8-byte key; the chunks and
// the index may add at most 28 bytes more (a flat_hash_set just grown to half load, and the
// unused rows of the last chunk).
TEST(TableMemoryTest, ADim30AdamRowTakesAtMost400Bytes) {
  Table table(Spec(0, 30, UNIFORM, 0.1f), Resolved(ADAM, 0.01f), 1);
  EXPECT_EQ(table.memory_bytes(), 0u);
  std::vector<uint64_t> keys;
  for (uint64_t key = 0; key < 300000; ++key) {
    keys.push_back(key * 7919);
    if (keys.size() == 1000) {
      table.Push(keys, std::vector<float>(keys.size() * 30, 0.01f));
      keys.clear();
      const double per_row =
          static_cast<double>(table.memory_bytes()) / static_cast<double>(table.num_rows());
      ASSERT_LE(per_row, 400.0) << table.num_rows() << " rows";
      ASSERT_GE(per_row, 372.0) << table.num_rows() << " rows";
    }
  }
  EXPECT_EQ(table.num_rows(), 300000u);
  // The figure docs/data-at-scale.md quotes (--gtest_output=xml shows it).
  RecordProperty("memory_bytes", std::to_string(table.memory_bytes()));
  EXPECT_EQ(table.bytes(), 300000u * ((30 + 60) * 4 + 4));
}

}  // namespace
}  // namespace psrec
