#include "ps/checkpoint_manifest.h"

#include <algorithm>
#include <filesystem>
#include <system_error>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "common/config_diff.h"
#include "common/files.h"
#include "google/protobuf/io/tokenizer.h"
#include "google/protobuf/text_format.h"

namespace psrec {
namespace {

namespace fs = std::filesystem;

// A manifest is a config and one line per shard; anything much larger is not one.
constexpr uint64_t kMaxManifestBytes = uint64_t{16} << 20;

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

// The number N of a directory named ckpt-N (N up to 19 digits), or false.
bool CheckpointNumber(absl::string_view name, uint64_t* n) {
  absl::string_view digits = name;
  if (!absl::ConsumePrefix(&digits, "ckpt-") || digits.empty() || digits.size() > 19 ||
      !std::all_of(digits.begin(), digits.end(), absl::ascii_isdigit)) {
    return false;
  }
  *n = 0;
  for (char c : digits) *n = *n * 10 + static_cast<uint64_t>(c - '0');
  return true;
}

}  // namespace

std::string CheckpointName(uint32_t epochs_done) {
  return absl::StrFormat("ckpt-%06u", epochs_done);
}

absl::Status WriteManifest(const std::string& checkpoint, const CheckpointManifest& manifest) {
  const std::string path = JoinPath(checkpoint, kManifestName);
  if (const std::string problem = ManifestProblem(manifest); !problem.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("refusing to write ", path, ", which could not be read back: ", problem));
  }
  std::string text;
  if (!google::protobuf::TextFormat::PrintToString(manifest, &text)) {
    return absl::InternalError(absl::StrCat(path, ": cannot print the manifest"));
  }
  if (absl::Status s = MakeDurableDir(checkpoint); !s.ok()) return s;
  if (absl::Status s = WriteFileAtomically(path, text); !s.ok()) return s;
  return FsyncDir(checkpoint);
}

absl::StatusOr<CheckpointManifest> ReadManifest(const std::string& checkpoint) {
  const std::string path = JoinPath(checkpoint, kManifestName);
  absl::StatusOr<std::string> text = ReadFileToString(path, kMaxManifestBytes);
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
    uint64_t n = 0;
    if (!CheckpointNumber(name, &n)) continue;
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
  return JoinPath(root, best_name);
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

}  // namespace psrec
