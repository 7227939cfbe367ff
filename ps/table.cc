#include "ps/table.h"

#include <algorithm>
#include <cstring>
#include <limits>

#include "absl/base/attributes.h"
#include "common/log.h"
#include "common/rng.h"
#include "ps/optimizer.h"

namespace psrec {
namespace {

constexpr size_t kChunk = 4;
constexpr size_t kCacheLine = 64;

// Prefetches every cache line of [begin, begin + bytes). Always inlined because GCC 12 finds an
// out-of-line function that only prefetches to be "const" and deletes the calls to it. That is also
// why Push does not call index_.prefetch(): with this absl and NDEBUG it compiles to nothing.
ABSL_ATTRIBUTE_ALWAYS_INLINE inline void Prefetch(const void* begin, size_t bytes) {
  if (bytes == 0) return;
  const char* p = static_cast<const char*>(begin);
  for (size_t offset = 0; offset < bytes; offset += kCacheLine) __builtin_prefetch(p + offset, 1);
  __builtin_prefetch(p + bytes - 1, 1);
}

}  // namespace

// One hash per row, then a sequential generator for its elements: pulls of absent rows call this
// for every row, and a hash per element would cost several times more.
void InitRow(const TableSpec& spec, uint64_t seed, uint64_t key, absl::Span<float> out) {
  if (spec.init() != UNIFORM) {  // ZEROS, and INIT_UNSPECIFIED read as ZEROS
    std::fill(out.begin(), out.end(), 0.0f);
    return;
  }
  Rng rng(HashCombine(HashCombine(seed, spec.id()), key));
  const float scale = spec.init_scale();
  // 2u - 1 is exact for the 24-bit u and lies in [-1, 1), so the value is within [-scale, scale].
  for (float& x : out) x = scale * (2.0f * rng.Unit() - 1.0f);
}

Table::Table(const TableSpec& spec, const OptimizerConfig& optimizer, uint64_t seed)
    : spec_(spec),
      optimizer_(optimizer),
      seed_(seed),
      state_per_param_(StateFloatsPerParam(optimizer.kind())),
      state_width_(size_t{spec.width()} * static_cast<size_t>(state_per_param_)),
      index_(0, KeyHash{this}, KeyEq{this}) {
  PSREC_CHECK(spec_.width() > 0) << "table " << spec_.id() << " has width 0";
}

void Table::Pull(absl::Span<const uint64_t> keys, absl::Span<float> out) const {
  CheckSize("floats", out.size(), keys.size());
  PullRows(
      keys, keys.size(), [](size_t i) { return i; }, out.data());
}

void Table::PullAt(absl::Span<const uint64_t> keys, absl::Span<const uint32_t> positions,
                   absl::Span<float> out) const {
  CheckSize("floats", out.size(), keys.size());
  PullRows(
      keys, positions.size(), [&](size_t i) { return size_t{positions[i]}; }, out.data());
}

void Table::CheckSize(const char* what, size_t floats, size_t num_keys) const {
  PSREC_CHECK(floats == num_keys * spec_.width())
      << "table " << spec_.id() << ": " << floats << " " << what << " for " << num_keys << " keys";
}

template <typename Position>
void Table::PullRows(absl::Span<const uint64_t> keys, size_t n, Position position,
                     float* out) const {
  const size_t width = spec_.width();
  for (size_t i = 0; i < n; ++i) {
    const size_t p = position(i);
    float* dst = out + p * width;
    auto it = index_.find(keys[p]);
    if (it != index_.end()) {
      std::memcpy(dst, values(*it), width * sizeof(float));
    } else {
      InitRow(spec_, seed_, keys[p], absl::Span<float>(dst, width));
    }
  }
}

void Table::Push(absl::Span<const uint64_t> keys, absl::Span<const float> grads) {
  CheckSize("grads", grads.size(), keys.size());
  PushRows(
      keys, keys.size(), [](size_t i) { return i; }, grads.data());
}

void Table::PushAt(absl::Span<const uint64_t> keys, absl::Span<const uint32_t> positions,
                   absl::Span<const float> grads) {
  CheckSize("grads", grads.size(), keys.size());
  PushRows(
      keys, positions.size(), [&](size_t i) { return size_t{positions[i]}; }, grads.data());
}

// Rows are scattered over arrays much larger than the cache, so an update waits on misses for its
// hash slot, its values and its state. Push works in chunks of kChunk keys, one chunk ahead: the
// rows of chunk c + 1 are looked up (the look-ups of a chunk are independent, so the CPU overlaps
// their misses) and their data prefetched just before the rows of chunk c are updated. Looking a
// row up early is safe: creation order does not matter, and repeated keys are still updated in
// order.
template <typename Position>
void Table::PushRows(absl::Span<const uint64_t> keys, size_t n, Position position,
                     const float* grads) {
  const size_t width = spec_.width();
  const size_t state_width = state_width_;
  // Finds or creates the rows of keys [begin, begin + kChunk) and prefetches their data.
  auto look_up = [&](size_t begin, uint32_t* rows) {
    const size_t end = std::min(n, begin + kChunk);
    for (size_t i = begin; i < end; ++i) rows[i - begin] = FindOrCreate(keys[position(i)]);
    for (size_t i = begin; i < end; ++i) {
      const size_t row = rows[i - begin];
      Prefetch(values(row), width * sizeof(float));
      Prefetch(state(row), state_width * sizeof(float));
      Prefetch(&step(row), sizeof(uint32_t));
    }
  };
  uint32_t rows[2][kChunk];
  look_up(0, rows[0]);
  const float l2 = spec_.l2();
  for (size_t begin = 0, c = 0; begin < n; begin += kChunk, c ^= 1) {
    if (begin + kChunk < n) look_up(begin + kChunk, rows[c ^ 1]);
    // Rows stay where they were made (a chunk never moves), so the pointers are good.
    for (size_t i = begin; i < std::min(n, begin + kChunk); ++i) {
      const size_t row = rows[c][i - begin];
      ApplyUpdate(optimizer_, l2, absl::Span<float>(values(row), width),
                  absl::Span<float>(state(row), state_width), &step(row),
                  absl::Span<const float>(grads + position(i) * width, width));
    }
  }
}

void Table::ForEachRow(const RowVisitor& visit) const {
  const size_t width = spec_.width();
  for (size_t row = 0; row < rows_; ++row) {
    visit(key(row), step(row), absl::Span<const float>(values(row), width),
          absl::Span<const float>(state(row), state_width_));
  }
}

void Table::InsertRow(uint64_t key, uint32_t step, absl::Span<const float> values,
                      absl::Span<const float> state) {
  const size_t width = spec_.width();
  PSREC_CHECK(values.size() == width && state.size() == state_width_)
      << "table " << spec_.id() << ": row " << key << " given " << values.size() << " values and "
      << state.size() << " state floats, want " << width << " and " << state_width_;
  const size_t row = FindOrCreate(key);
  std::copy(values.begin(), values.end(), this->values(row));
  std::copy(state.begin(), state.end(), this->state(row));
  this->step(row) = step;
}

size_t Table::bytes() const {
  return rows_ * ((spec_.width() + state_width_) * sizeof(float) + sizeof(uint32_t));
}

size_t Table::memory_bytes() const {
  // absl's flat_hash_set: a slot and a control byte per unit of capacity, and a group's worth
  // (16) of cloned control bytes.
  const size_t index = index_.capacity() == 0 ? 0 : index_.capacity() * (sizeof(uint32_t) + 1) + 16;
  return chunks_.size() * ChunkBytes() + chunks_.capacity() * sizeof(chunks_[0]) + index;
}

uint32_t Table::FindOrCreate(uint64_t key) {
  if (auto it = index_.find(key); it != index_.end()) return *it;
  PSREC_CHECK(rows_ < std::numeric_limits<uint32_t>::max()) << "table " << spec_.id() << " is full";
  const size_t row = rows_;
  if (row % kChunkRows == 0) {
    chunks_.emplace_back(static_cast<char*>(std::malloc(ChunkBytes())));
    PSREC_CHECK(chunks_.back() != nullptr) << "table " << spec_.id() << ": out of memory";
  }
  ++rows_;
  this->key(row) = key;
  step(row) = 0;
  InitRow(spec_, seed_, key, absl::Span<float>(values(row), spec_.width()));
  InitOptimizerState(optimizer_, absl::Span<float>(state(row), state_width_));
  index_.insert(static_cast<uint32_t>(row));  // hashes the key just stored
  return static_cast<uint32_t>(row);
}

}  // namespace psrec
