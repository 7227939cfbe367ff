#include "ps/checkpoint.h"

#include <fcntl.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <system_error>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "common/files.h"
#include "common/job_config.h"
#include "common/sharding.h"
#include "google/protobuf/io/tokenizer.h"
#include "google/protobuf/text_format.h"
#include "ps/optimizer.h"
#include "ps/sharded_table.h"

namespace psrec {
namespace {

namespace fs = std::filesystem;

// Rows file layout, all little-endian:
//   header:  magic[8] "PSRECKPT", u32 format version, u32 shard, u32 num_shards, u32 tables
//   tables:  u32 id, u32 width, u32 state floats per row, u64 rows, then the rows sorted by key:
//            u64 key, u32 step, f32 values[width], f32 state[state floats per row]
constexpr char kMagic[8] = {'P', 'S', 'R', 'E', 'C', 'K', 'P', 'T'};
constexpr size_t kTableHeaderBytes = 3 * 4 + 8;
constexpr uint64_t kRowHeaderBytes = 8 + 4;
constexpr char kManifestName[] = "MANIFEST";
// A manifest is a config and one line per shard; anything much larger is not one.
constexpr uint64_t kMaxManifestBytes = uint64_t{16} << 20;

std::string Join(const std::string& dir, const std::string& name) {
  if (dir.empty()) return name;
  return dir.back() == '/' ? dir + name : absl::StrCat(dir, "/", name);
}

std::string ShardFileName(uint32_t shard, uint32_t num_shards) {
  return absl::StrFormat("shard-%05u-of-%05u.rows", shard, num_shards);
}

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

uint32_t Crc32(absl::string_view data) {
  uLong crc = crc32(0L, Z_NULL, 0);
  while (!data.empty()) {
    const size_t n = std::min<size_t>(data.size(), size_t{1} << 30);  // crc32 takes a uInt
    crc = crc32(crc, reinterpret_cast<const Bytef*>(data.data()), static_cast<uInt>(n));
    data.remove_prefix(n);
  }
  return static_cast<uint32_t>(crc);
}

// WriteFileAtomically fsyncs the file but not the directory holding the new name, so a crash could
// still lose the rename; this makes it durable.
absl::Status FsyncDir(const std::string& dir) {
  const std::string path = dir.empty() ? "." : dir;
  const int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0 || ::fsync(fd) != 0) {
    const int error = errno;
    if (fd >= 0) ::close(fd);
    return absl::UnavailableError(
        absl::StrCat("cannot fsync directory ", path, ": ", std::strerror(error)));
  }
  ::close(fd);
  return absl::OkStatus();
}

// Creates `dir` if needed; a new directory's own entry is made durable in its parent.
absl::Status MakeDir(const std::string& dir) {
  std::error_code ec;
  const bool created = fs::create_directories(dir, ec);
  if (ec) return absl::UnavailableError(absl::StrCat("cannot create ", dir, ": ", ec.message()));
  if (!created) return absl::OkStatus();
  fs::path path = fs::path(dir).lexically_normal();
  if (!path.has_filename()) path = path.parent_path();  // "a/b/" names b, whose parent is a
  return FsyncDir(path.parent_path().string());
}

// Reads the regular file `path`, which must hold at most `max_bytes`.
absl::StatusOr<std::string> ReadFile(const std::string& path, uint64_t max_bytes) {
  std::error_code ec;
  const fs::file_status status = fs::status(path, ec);
  if (ec || !fs::is_regular_file(status)) {
    return absl::NotFoundError(absl::StrCat(
        path, ": cannot read: ", ec ? ec.message() : std::string("not a regular file")));
  }
  const uint64_t size = fs::file_size(path, ec);
  if (ec) return absl::NotFoundError(absl::StrCat(path, ": cannot read: ", ec.message()));
  if (size > max_bytes) {
    return absl::DataLossError(
        absl::StrCat(path, ": ", size, " bytes, more than the ", max_bytes, " expected"));
  }
  std::string contents(size, '\0');
  std::ifstream in(path, std::ios::binary);
  if (!in.read(contents.data(), static_cast<std::streamsize>(size)) ||
      in.peek() != std::ifstream::traits_type::eof()) {
    return absl::DataLossError(absl::StrCat(path, ": changed size while being read"));
  }
  return contents;
}

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

// What is wrong with `manifest`, or empty.
std::string ManifestProblem(const CheckpointManifest& manifest) {
  if (manifest.format_version() != kCheckpointFormatVersion) {
    return absl::StrCat("format version ", manifest.format_version(), ", but this build reads ",
                        kCheckpointFormatVersion);
  }
  if (manifest.num_shards() == 0) return "num_shards is 0";
  if (static_cast<uint64_t>(manifest.files_size()) != manifest.num_shards()) {
    return absl::StrCat("lists ", manifest.files_size(), " files for ", manifest.num_shards(),
                        " shards (one per shard is needed)");
  }
  absl::flat_hash_set<std::string> names;
  for (int i = 0; i < manifest.files_size(); ++i) {
    const CheckpointFile& file = manifest.files(i);
    if (file.shard() != static_cast<uint32_t>(i)) {
      return absl::StrCat("file ", i, " (", file.name(), ") is for shard ", file.shard(),
                          "; the files must be for shards 0..", manifest.num_shards() - 1,
                          " in order");
    }
    const std::string& name = file.name();
    if (name.empty() || absl::StrContains(name, '/') || absl::StrContains(name, "..") ||
        absl::StrContains(name, '\0') || name == "." || name == kManifestName) {
      return absl::StrCat("shard ", i, "'s file name \"", absl::CEscape(name),
                          "\" is not a plain file name");
    }
    if (!names.insert(name).second) {
      return absl::StrCat("file ", name, " is listed for two shards");
    }
  }
  return "";
}

// Keeps the first error the text-format parser reports, with its position.
class FirstError : public google::protobuf::io::ErrorCollector {
 public:
  void AddError(int line, google::protobuf::io::ColumnNumber column,
                const std::string& message) override {
    if (error_.empty()) error_ = absl::StrCat("line ", line + 1, ":", column + 1, ": ", message);
  }
  const std::string& error() const { return error_; }

 private:
  std::string error_;
};

// One table of a parsed rows file: its rows are `rows` records from byte `offset` on.
struct TableBlock {
  uint32_t id = 0;
  uint32_t width = 0;
  uint32_t state_width = 0;
  uint64_t rows = 0;
  size_t offset = 0;
};

// A rows file read into memory and checked whole, before any row is handed out.
struct ShardFile {
  std::string contents;
  std::vector<TableBlock> tables;
};

// What the config says each table must look like: id -> (width, state floats per row).
using TableShapes = absl::flat_hash_map<uint32_t, std::pair<uint32_t, uint64_t>>;

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

// Parses and checks a rows file's contents against its manifest entry and the config. Returns
// what is wrong, or empty.
std::string ParseRows(const CheckpointFile& entry, uint32_t num_shards, const TableShapes& shapes,
                      ShardFile* file) {
  Reader in(file->contents);
  absl::string_view magic;
  uint32_t version = 0, shard = 0, header_shards = 0, num_tables = 0;
  if (!in.Bytes(sizeof(kMagic), &magic) || !in.U32(&version) || !in.U32(&shard) ||
      !in.U32(&header_shards) || !in.U32(&num_tables)) {
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
  absl::flat_hash_set<uint32_t> seen;
  uint64_t rows = 0;
  for (uint32_t t = 0; t < num_tables; ++t) {
    TableBlock block;
    if (std::string problem = ReadTableHeader(&in, shapes, &seen, &block); !problem.empty()) {
      return problem;
    }
    if (std::string problem = CheckRows(file->contents, block, shard, num_shards);
        !problem.empty()) {
      return problem;
    }
    rows += block.rows;
    file->tables.push_back(block);
  }
  if (in.remaining() != 0) {
    return absl::StrCat(in.remaining(), " bytes follow the last table");
  }
  if (rows != entry.rows()) {
    return absl::StrCat("holds ", rows, " rows, but the manifest says ", entry.rows());
  }
  return "";
}

// Reads `entry`'s file and checks its size and crc32 against the manifest, then its contents.
absl::Status ReadShardFile(const std::string& checkpoint, const CheckpointFile& entry,
                           uint32_t num_shards, const TableShapes& shapes, ShardFile* file) {
  const std::string path = Join(checkpoint, entry.name());
  std::error_code ec;
  const uint64_t size = fs::file_size(path, ec);
  if (ec) {
    return absl::NotFoundError(
        absl::StrCat(path, ": cannot read shard ", entry.shard(), "'s rows: ", ec.message()));
  }
  if (size != entry.bytes()) {
    return absl::DataLossError(absl::StrCat(path, ": size ", size, " but the manifest says ",
                                            entry.bytes(),
                                            size < entry.bytes() ? " (truncated?)" : ""));
  }
  absl::StatusOr<std::string> contents = ReadFile(path, entry.bytes());
  if (!contents.ok()) return contents.status();
  file->contents = *std::move(contents);
  if (const uint32_t crc = Crc32(file->contents); crc != entry.crc32()) {
    return absl::DataLossError(absl::StrFormat(
        "%s: crc32 %08x but the manifest says %08x (corrupt)", path, crc, entry.crc32()));
  }
  if (std::string problem = ParseRows(entry, num_shards, shapes, file); !problem.empty()) {
    return absl::DataLossError(absl::StrCat(path, ": ", problem));
  }
  return absl::OkStatus();
}

// Hands the rows of checked files to `sink`.
void EmitRows(const ShardFile& file, const std::function<bool(uint32_t, uint64_t)>& keep,
              const RowSink& sink) {
  std::vector<float> values, state;
  for (const TableBlock& block : file.tables) {
    Reader in(file.contents);
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

}  // namespace

std::string CheckpointName(uint32_t epochs_done) {
  return absl::StrFormat("ckpt-%06u", epochs_done);
}

absl::StatusOr<CheckpointFile> WriteShardCheckpoint(const std::string& checkpoint, uint32_t shard,
                                                    uint32_t num_shards,
                                                    absl::Span<const ShardedTable* const> tables) {
  const std::string name = ShardFileName(shard, num_shards);
  const std::string path = Join(checkpoint, name);
  if (shard >= num_shards) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": shard ", shard, " is not below num_shards ", num_shards));
  }
  std::vector<const ShardedTable*> sorted;
  for (const ShardedTable* table : tables) {
    if (table != nullptr) sorted.push_back(table);
  }
  std::sort(sorted.begin(), sorted.end(),
            [](const auto* a, const auto* b) { return a->spec().id() < b->spec().id(); });
  for (size_t i = 1; i < sorted.size(); ++i) {
    if (sorted[i]->spec().id() == sorted[i - 1]->spec().id()) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": table ", sorted[i]->spec().id(), " is given twice"));
    }
  }
  std::string out(kMagic, sizeof(kMagic));
  PutU32(&out, kCheckpointFormatVersion);
  PutU32(&out, shard);
  PutU32(&out, num_shards);
  PutU32(&out, static_cast<uint32_t>(sorted.size()));
  uint64_t rows = 0;
  for (const ShardedTable* table : sorted) rows += AppendTable(*table, &out);

  if (absl::Status s = MakeDir(checkpoint); !s.ok()) return s;
  if (absl::Status s = WriteFileAtomically(path, out); !s.ok()) return s;
  if (absl::Status s = FsyncDir(checkpoint); !s.ok()) return s;
  CheckpointFile file;
  file.set_name(name);
  file.set_shard(shard);
  file.set_bytes(out.size());
  file.set_crc32(Crc32(out));
  file.set_rows(rows);
  return file;
}

absl::Status WriteManifest(const std::string& checkpoint, const CheckpointManifest& manifest) {
  const std::string path = Join(checkpoint, kManifestName);
  if (const std::string problem = ManifestProblem(manifest); !problem.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("refusing to write ", path, ", which could not be read back: ", problem));
  }
  std::string text;
  if (!google::protobuf::TextFormat::PrintToString(manifest, &text)) {
    return absl::InternalError(absl::StrCat(path, ": cannot print the manifest"));
  }
  if (absl::Status s = MakeDir(checkpoint); !s.ok()) return s;
  if (absl::Status s = WriteFileAtomically(path, text); !s.ok()) return s;
  return FsyncDir(checkpoint);
}

absl::StatusOr<CheckpointManifest> ReadManifest(const std::string& checkpoint) {
  const std::string path = Join(checkpoint, kManifestName);
  absl::StatusOr<std::string> text = ReadFile(path, kMaxManifestBytes);
  if (!text.ok()) return text.status();
  CheckpointManifest manifest;
  google::protobuf::TextFormat::Parser parser;
  FirstError error;
  parser.RecordErrorsTo(&error);
  if (!parser.ParseFromString(*text, &manifest)) {
    return absl::DataLossError(
        absl::StrCat(path, ": not a text-format psrec.CheckpointManifest: ", error.error()));
  }
  if (const std::string problem = ManifestProblem(manifest); !problem.empty()) {
    return absl::DataLossError(absl::StrCat(path, ": ", problem));
  }
  return manifest;
}

absl::StatusOr<std::string> FindLatestCheckpoint(const std::string& root) {
  std::error_code ec;
  fs::directory_iterator it(root, ec);
  if (ec) {
    return absl::NotFoundError(
        absl::StrCat("no checkpoint under ", root, ": cannot list it: ", ec.message()));
  }
  bool found = false;
  uint64_t best = 0;
  std::string best_name;
  for (; it != fs::directory_iterator(); it.increment(ec)) {
    const std::string name = it->path().filename().string();
    absl::string_view digits = name;
    if (!absl::ConsumePrefix(&digits, "ckpt-") || digits.empty() || digits.size() > 19 ||
        !std::all_of(digits.begin(), digits.end(), absl::ascii_isdigit)) {
      continue;
    }
    uint64_t n = 0;
    for (char c : digits) n = n * 10 + static_cast<uint64_t>(c - '0');
    std::error_code manifest_ec;
    if (!fs::is_regular_file(it->path() / kManifestName, manifest_ec)) continue;
    // Ties ("ckpt-3" and "ckpt-000003") go to the larger name, so the choice does not depend on
    // the order the directory lists them in.
    if (!found || n > best || (n == best && name > best_name)) {
      found = true;
      best = n;
      best_name = name;
    }
  }
  if (ec) {
    return absl::UnavailableError(absl::StrCat("cannot list ", root, ": ", ec.message()));
  }
  if (!found) {
    return absl::NotFoundError(absl::StrCat("no complete checkpoint (a ckpt-N directory with a ",
                                            kManifestName, ") under ", root));
  }
  return Join(root, best_name);
}

std::vector<std::string> CheckpointConfigDifferences(const JobConfig& checkpoint,
                                                     const JobConfig& job) {
  JobConfig a = checkpoint, b = job;
  for (JobConfig* c : {&a, &b}) {
    c->clear_num_shards();
    c->clear_num_workers();
    c->clear_consistency();
    c->clear_staleness();
    c->clear_epochs();
    c->clear_data_dir();
  }
  return ConfigDifferences(a, b);
}

absl::Status LoadCheckpoint(const std::string& checkpoint, const JobConfig& config,
                            const std::function<bool(uint32_t table, uint64_t key)>& keep,
                            const RowSink& sink) {
  absl::StatusOr<CheckpointManifest> manifest = ReadManifest(checkpoint);
  if (!manifest.ok()) return manifest.status();
  const std::vector<std::string> differences =
      CheckpointConfigDifferences(manifest->config(), config);
  if (!differences.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat(Join(checkpoint, kManifestName),
                     ": written by a job with another config (checkpoint vs this job): ",
                     absl::StrJoin(differences, "; ")));
  }
  TableShapes shapes;
  const uint64_t state_per_param = StateFloatsPerParam(config.optimizer().kind());
  for (const TableSpec& spec : config.tables()) {
    if (!shapes.try_emplace(spec.id(), spec.width(), spec.width() * state_per_param).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("the job's config lists table ", spec.id(), " twice"));
    }
  }
  std::vector<ShardFile> files(manifest->files_size());
  for (int i = 0; i < manifest->files_size(); ++i) {
    if (absl::Status s = ReadShardFile(checkpoint, manifest->files(i), manifest->num_shards(),
                                       shapes, &files[i]);
        !s.ok()) {
      return s;
    }
  }
  for (const ShardFile& file : files) EmitRows(file, keep, sink);
  return absl::OkStatus();
}

}  // namespace psrec
