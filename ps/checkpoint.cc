#include "ps/checkpoint.h"

#include <algorithm>
#include <filesystem>
#include <system_error>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/files.h"
#include "ps/optimizer.h"
#include "ps/sharded_table.h"

namespace psrec {
namespace {

namespace fs = std::filesystem;

std::string ShardFileName(uint32_t shard, uint32_t num_shards) {
  return absl::StrFormat("shard-%05u-of-%05u.rows", shard, num_shards);
}

// The config's tables, each once: id -> (width, state floats per row).
absl::StatusOr<TableShapes> ShapesOf(const JobConfig& config) {
  TableShapes shapes;
  const uint64_t state_per_param = StateFloatsPerParam(config.optimizer().kind());
  for (const TableSpec& spec : config.tables()) {
    if (!shapes.try_emplace(spec.id(), spec.width(), spec.width() * state_per_param).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("the job's config lists table ", spec.id(), " twice"));
    }
  }
  return shapes;
}

// Reads `entry`'s file and checks its size and crc32 against the manifest, then its contents.
absl::StatusOr<DecodedRows> ReadShardFile(const std::string& checkpoint,
                                          const CheckpointFile& entry, uint32_t num_shards,
                                          const TableShapes& shapes) {
  const std::string path = JoinPath(checkpoint, entry.name());
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
  absl::StatusOr<std::string> contents = ReadFileToString(path, entry.bytes());
  if (!contents.ok()) return contents.status();
  if (const uint32_t crc = Crc32(*contents); crc != entry.crc32()) {
    return absl::DataLossError(absl::StrFormat(
        "%s: crc32 %08x but the manifest says %08x (corrupt)", path, crc, entry.crc32()));
  }
  absl::StatusOr<DecodedRows> rows =
      DecodedRows::Decode(*std::move(contents), entry, num_shards, shapes);
  if (!rows.ok()) return absl::DataLossError(absl::StrCat(path, ": ", rows.status().message()));
  return rows;
}

}  // namespace

absl::StatusOr<CheckpointFile> WriteShardCheckpoint(const std::string& checkpoint, uint32_t shard,
                                                    uint32_t num_shards,
                                                    absl::Span<const ShardedTable* const> tables) {
  const std::string name = ShardFileName(shard, num_shards);
  const std::string path = JoinPath(checkpoint, name);
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
  uint64_t rows = 0;
  const std::string out = EncodeRows(shard, num_shards, sorted, &rows);

  if (absl::Status s = MakeDurableDir(checkpoint); !s.ok()) return s;
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

absl::Status LoadCheckpoint(const std::string& checkpoint, const JobConfig& config,
                            const std::function<bool(uint32_t table, uint64_t key)>& keep,
                            const RowSink& sink) {
  absl::StatusOr<CheckpointManifest> manifest = ReadManifest(checkpoint);
  if (!manifest.ok()) return manifest.status();
  const std::vector<std::string> differences =
      CheckpointConfigDifferences(manifest->config(), config);
  if (!differences.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat(JoinPath(checkpoint, kManifestName),
                     ": written by a job with another config (checkpoint vs this job): ",
                     absl::StrJoin(differences, "; ")));
  }
  absl::StatusOr<TableShapes> shapes = ShapesOf(config);
  if (!shapes.ok()) return shapes.status();
  std::vector<DecodedRows> files;
  files.reserve(manifest->files_size());
  for (const CheckpointFile& entry : manifest->files()) {
    absl::StatusOr<DecodedRows> file =
        ReadShardFile(checkpoint, entry, manifest->num_shards(), *shapes);
    if (!file.ok()) return file.status();
    files.push_back(*std::move(file));
  }
  for (const DecodedRows& file : files) file.ForEachRow(keep, sink);
  return absl::OkStatus();
}

}  // namespace psrec
