#include "ps/checkpoint_codec.h"

#include <zlib.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/sharding.h"
#include "ps/checkpoint_manifest.h"
#include "ps/sharded_table.h"

namespace psrec {
namespace {

using TableBlock = DecodedRows::TableBlock;

constexpr char kMagic[8] = {'P', 'S', 'R', 'E', 'C', 'K', 'P', 'T'};
constexpr size_t kTableHeaderBytes = 3 * 4 + 8;
constexpr uint64_t kRowHeaderBytes = 8 + 4;

void PutU32(std::string* out, uint32_t v) {
  const char bytes[4] = {static_cast<char>(v), static_cast<char>(v >> 8),
                         static_cast<char>(v >> 16), static_cast<char>(v >> 24)};
  out->append(bytes, 4);
}

void PutU64(std::string* out, uint64_t v) {
  PutU32(out, static_cast<uint32_t>(v));
  PutU32(out, static_cast<uint32_t>(v >> 32));
}

void PutF32(std::string* out, float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, sizeof(bits));
  PutU32(out, bits);
}

// Reads little-endian values from a byte string. Every read checks that the bytes are there.
class Reader {
 public:
  explicit Reader(absl::string_view data) : data_(data) {}

  size_t remaining() const { return data_.size() - pos_; }
  size_t offset() const { return pos_; }

  bool U32(uint32_t* v) {
    if (remaining() < 4) return false;
    const auto* p = reinterpret_cast<const unsigned char*>(data_.data() + pos_);
    *v = uint32_t{p[0]} | uint32_t{p[1]} << 8 | uint32_t{p[2]} << 16 | uint32_t{p[3]} << 24;
    pos_ += 4;
    return true;
  }
  bool U64(uint64_t* v) {
    uint32_t lo, hi;
    if (remaining() < 8 || !U32(&lo) || !U32(&hi)) return false;
    *v = uint64_t{lo} | uint64_t{hi} << 32;
    return true;
  }
  bool F32(float* f) {
    uint32_t bits;
    if (!U32(&bits)) return false;
    std::memcpy(f, &bits, sizeof(bits));
    return true;
  }
  bool Bytes(size_t n, absl::string_view* out) {
    if (remaining() < n) return false;
    *out = data_.substr(pos_, n);
    pos_ += n;
    return true;
  }

 private:
  absl::string_view data_;
  size_t pos_ = 0;
};

// Appends one table's header and rows, sorted by key so that equal contents give equal bytes.
// Returns the number of rows.
uint64_t AppendTable(const ShardedTable& table, std::string* out) {
  const uint32_t width = table.width();
  const uint32_t state_width = table.state_floats_per_row();
  struct Row {
    uint64_t key;
    uint32_t step;
    size_t at;  // into floats
  };
  std::vector<Row> rows;
  std::vector<float> floats;
  table.ForEachRow([&](uint64_t key, uint32_t step, absl::Span<const float> values,
                       absl::Span<const float> state) {
    rows.push_back({key, step, floats.size()});
    floats.insert(floats.end(), values.begin(), values.end());
    floats.insert(floats.end(), state.begin(), state.end());
  });
  std::sort(rows.begin(), rows.end(), [](const Row& a, const Row& b) { return a.key < b.key; });
  PutU32(out, table.spec().id());
  PutU32(out, width);
  PutU32(out, state_width);
  PutU64(out, rows.size());
  out->reserve(out->size() + rows.size() * (kRowHeaderBytes + 4 * (uint64_t{width} + state_width)));
  for (const Row& row : rows) {
    PutU64(out, row.key);
    PutU32(out, row.step);
    for (size_t i = 0; i < size_t{width} + state_width; ++i) PutF32(out, floats[row.at + i]);
  }
  return rows.size();
}

// Checks every row of `block` (whose bytes are known to be there): keys unique and owned by
// `shard`, values and state finite. Returns what is wrong, or empty.
std::string CheckRows(absl::string_view contents, const TableBlock& block, uint32_t shard,
                      uint32_t num_shards) {
  Reader in(contents);
  absl::string_view skipped;
  in.Bytes(block.offset, &skipped);
  absl::flat_hash_set<uint64_t> keys;
  keys.reserve(block.rows);
  for (uint64_t r = 0; r < block.rows; ++r) {
    uint64_t key = 0;
    uint32_t step = 0;
    in.U64(&key);
    in.U32(&step);
    if (!keys.insert(key).second) {
      return absl::StrCat("table ", block.id, ": key ", key, " appears twice");
    }
    if (const uint32_t owner = ShardOf(block.id, key, num_shards); owner != shard) {
      return absl::StrCat("table ", block.id, ": key ", key, " belongs to shard ", owner, " of ",
                          num_shards, ", not to this file's shard ", shard);
    }
    for (uint64_t i = 0; i < uint64_t{block.width} + block.state_width; ++i) {
      float x = 0;
      in.F32(&x);
      if (!std::isfinite(x)) {
        return absl::StrCat("table ", block.id, ": key ", key, " has ", x, " in its ",
                            i < block.width ? "values" : "optimizer state");
      }
    }
  }
  return "";
}

// Reads one table's header at `in` and checks it against the config. Returns what is wrong, or
// empty.
std::string ReadTableHeader(Reader* in, const TableShapes& shapes,
                            absl::flat_hash_set<uint32_t>* seen, TableBlock* block) {
  uint64_t rows = 0;
  if (in->remaining() < kTableHeaderBytes) {
    return absl::StrCat("ends inside a table header at byte ", in->offset());
  }
  in->U32(&block->id);
  in->U32(&block->width);
  in->U32(&block->state_width);
  in->U64(&rows);
  auto it = shapes.find(block->id);
  if (it == shapes.end()) {
    return absl::StrCat("holds table ", block->id, ", which the config lacks");
  }
  if (!seen->insert(block->id).second) return absl::StrCat("holds table ", block->id, " twice");
  const auto [width, state_width] = it->second;
  if (block->width != width) {
    return absl::StrCat("table ", block->id, " has width ", block->width, ", the config says ",
                        width);
  }
  if (block->state_width != state_width) {
    return absl::StrCat("table ", block->id, " has ", block->state_width,
                        " optimizer state floats per row, the config's optimizer keeps ",
                        state_width);
  }
  const uint64_t row_bytes = kRowHeaderBytes + 4 * (uint64_t{block->width} + block->state_width);
  if (rows > in->remaining() / row_bytes) {
    return absl::StrCat("table ", block->id, " claims ", rows, " rows of ", row_bytes,
                        " bytes, but only ", in->remaining(), " bytes remain (truncated?)");
  }
  block->rows = rows;
  block->offset = in->offset();
  absl::string_view skipped;
  in->Bytes(rows * row_bytes, &skipped);
  return "";
}

// Reads the file header at `in` and checks it against the manifest entry and the config. Returns
// what is wrong, or empty.
std::string ReadFileHeader(Reader* in, const CheckpointFile& entry, uint32_t num_shards,
                           const TableShapes& shapes) {
  absl::string_view magic;
  uint32_t version = 0, shard = 0, header_shards = 0, num_tables = 0;
  if (!in->Bytes(sizeof(kMagic), &magic) || !in->U32(&version) || !in->U32(&shard) ||
      !in->U32(&header_shards) || !in->U32(&num_tables)) {
    return "too short for the header";
  }
  if (magic != absl::string_view(kMagic, sizeof(kMagic))) return "not a psrec rows file (magic)";
  if (version != kCheckpointFormatVersion) {
    return absl::StrCat("format version ", version, ", but this build reads ",
                        kCheckpointFormatVersion);
  }
  if (shard != entry.shard() || header_shards != num_shards) {
    return absl::StrCat("the header says shard ", shard, " of ", header_shards,
                        ", but the manifest lists it for shard ", entry.shard(), " of ",
                        num_shards);
  }
  if (num_tables != shapes.size()) {
    return absl::StrCat("holds ", num_tables, " tables, the config has ", shapes.size());
  }
  return "";
}

// Parses and checks a rows file's contents against its manifest entry and the config, filling
// `tables`. Returns what is wrong, or empty.
std::string ParseRows(absl::string_view contents, const CheckpointFile& entry, uint32_t num_shards,
                      const TableShapes& shapes, std::vector<TableBlock>* tables) {
  Reader in(contents);
  if (std::string problem = ReadFileHeader(&in, entry, num_shards, shapes); !problem.empty()) {
    return problem;
  }
  absl::flat_hash_set<uint32_t> seen;
  uint64_t rows = 0;
  for (size_t t = 0; t < shapes.size(); ++t) {
    TableBlock block;
    if (std::string problem = ReadTableHeader(&in, shapes, &seen, &block); !problem.empty()) {
      return problem;
    }
    if (std::string problem = CheckRows(contents, block, entry.shard(), num_shards);
        !problem.empty()) {
      return problem;
    }
    rows += block.rows;
    tables->push_back(block);
  }
  if (in.remaining() != 0) {
    return absl::StrCat(in.remaining(), " bytes follow the last table");
  }
  if (rows != entry.rows()) {
    return absl::StrCat("holds ", rows, " rows, but the manifest says ", entry.rows());
  }
  return "";
}

}  // namespace

std::string EncodeRows(uint32_t shard, uint32_t num_shards,
                       absl::Span<const ShardedTable* const> tables, uint64_t* rows) {
  std::string out(kMagic, sizeof(kMagic));
  PutU32(&out, kCheckpointFormatVersion);
  PutU32(&out, shard);
  PutU32(&out, num_shards);
  PutU32(&out, static_cast<uint32_t>(tables.size()));
  *rows = 0;
  for (const ShardedTable* table : tables) *rows += AppendTable(*table, &out);
  return out;
}

uint32_t Crc32(absl::string_view data) {
  uLong crc = crc32(0L, Z_NULL, 0);
  while (!data.empty()) {
    const size_t n = std::min<size_t>(data.size(), size_t{1} << 30);  // crc32 takes a uInt
    crc = crc32(crc, reinterpret_cast<const Bytef*>(data.data()), static_cast<uInt>(n));
    data.remove_prefix(n);
  }
  return static_cast<uint32_t>(crc);
}

absl::StatusOr<DecodedRows> DecodedRows::Decode(std::string contents, const CheckpointFile& entry,
                                                uint32_t num_shards, const TableShapes& shapes) {
  std::vector<TableBlock> tables;
  if (std::string problem = ParseRows(contents, entry, num_shards, shapes, &tables);
      !problem.empty()) {
    return absl::DataLossError(problem);
  }
  return DecodedRows(std::move(contents), std::move(tables));
}

void DecodedRows::ForEachRow(const std::function<bool(uint32_t table, uint64_t key)>& keep,
                             const RowSink& sink) const {
  std::vector<float> values, state;
  for (const TableBlock& block : tables_) {
    Reader in(contents_);
    absl::string_view skipped;
    in.Bytes(block.offset, &skipped);
    values.resize(block.rows == 0 ? 0 : block.width);
    state.resize(block.rows == 0 ? 0 : block.state_width);
    for (uint64_t r = 0; r < block.rows; ++r) {
      uint64_t key = 0;
      uint32_t step = 0;
      in.U64(&key);
      in.U32(&step);
      for (float& x : values) in.F32(&x);
      for (float& x : state) in.F32(&x);
      if (!keep || keep(block.id, key)) sink(block.id, key, step, values, state);
    }
  }
}

}  // namespace psrec
