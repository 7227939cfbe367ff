// Fuzzes the checkpoint loader (ps/checkpoint.h). The first input byte picks what the rest is:
//  - even: the text of a MANIFEST. ReadManifest reads it and, if it passes, LoadCheckpoint loads
//    the checkpoint it describes for the job config it names (its rows files are missing or
//    whatever an earlier input left, so this mostly reaches the file checks).
//  - odd: the next byte is the number of rows the manifest lists, and the rest the contents of the
//    one rows file of a one-shard checkpoint for a fixed job config (dot, dim 1, adagrad). The
//    fuzzer writes a MANIFEST that names the file with its true size and crc32, so the input
//    reaches the rows parser instead of stopping at the checksum.
// Every row handed to the sink must have the shape its table has in the config, and a load that
// fails must not have called the sink.
#include <unistd.h>
#include <zlib.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "common/model.h"
#include "google/protobuf/stubs/logging.h"
#include "google/protobuf/text_format.h"
#include "proto/checkpoint.pb.h"
#include "proto/config.pb.h"
#include "ps/checkpoint.h"
#include "ps/optimizer.h"

namespace {

void Check(bool ok) {
  if (!ok) std::abort();
}

std::string* dir = nullptr;  // the checkpoint directory, one per fuzzer process
constexpr char kRowsName[] = "shard-00000-of-00001.rows";

void WriteFile(const std::string& name, const void* data, size_t size) {
  FILE* f = std::fopen((*dir + "/" + name).c_str(), "wb");
  Check(f != nullptr);
  Check(std::fwrite(data, 1, size, f) == size);
  Check(std::fclose(f) == 0);
}

psrec::JobConfig FixedConfig() {
  psrec::JobConfig config;
  config.set_model(psrec::DOT);
  config.set_dim(1);
  config.set_seed(1);
  config.mutable_optimizer()->set_kind(psrec::ADAGRAD);
  config.mutable_optimizer()->set_lr(0.01f);
  psrec::FillTableSpecs(&config);
  return config;
}

// Loads the checkpoint in `dir` for `config`, checking every row against the config's tables.
void Load(const psrec::JobConfig& config) {
  const int state_per_param = psrec::StateFloatsPerParam(config.optimizer().kind());
  bool called = false;
  absl::Status status =
      psrec::LoadCheckpoint(*dir, config, nullptr,
                            [&](uint32_t table, uint64_t, uint32_t, absl::Span<const float> values,
                                absl::Span<const float> state) {
                              called = true;
                              const psrec::TableSpec* spec = nullptr;
                              for (const psrec::TableSpec& t : config.tables()) {
                                if (t.id() == table) spec = &t;
                              }
                              Check(spec != nullptr);
                              Check(values.size() == spec->width());
                              Check(state.size() == uint64_t{spec->width()} * state_per_param);
                            });
  Check(status.ok() || !called);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  // A text-format parse error is logged by protobuf as well as returned; the log would flood the
  // fuzzer's output.
  google::protobuf::SetLogHandler(
      [](google::protobuf::LogLevel, const char*, int, const std::string&) {});
  const char* tmp = std::getenv("TMPDIR");
  std::string pattern =
      std::string(tmp != nullptr ? tmp : "/tmp") + "/psrec_checkpoint_fuzzer.XXXXXX";
  Check(mkdtemp(pattern.data()) != nullptr);
  dir = new std::string(pattern);
  std::atexit([] {
    unlink((*dir + "/MANIFEST").c_str());
    unlink((*dir + "/" + kRowsName).c_str());
    rmdir(dir->c_str());
  });
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const uint8_t* rest = data + 1;
  size_t rest_size = size - 1;
  if (data[0] % 2 == 0) {
    // No rows file from an earlier input: a finding must replay from this input alone.
    unlink((*dir + "/" + kRowsName).c_str());
    WriteFile("MANIFEST", rest, rest_size);
    absl::StatusOr<psrec::CheckpointManifest> manifest = psrec::ReadManifest(*dir);
    if (manifest.ok()) Load(manifest->config());
    return 0;
  }
  if (size < 2) return 0;
  const uint32_t rows = data[1];
  rest = data + 2;
  rest_size = size - 2;
  static const psrec::JobConfig* config = new psrec::JobConfig(FixedConfig());
  WriteFile(kRowsName, rest, rest_size);
  psrec::CheckpointManifest manifest;
  manifest.set_format_version(psrec::kCheckpointFormatVersion);
  *manifest.mutable_config() = *config;
  manifest.set_num_shards(1);
  psrec::CheckpointFile* file = manifest.add_files();
  file->set_name(kRowsName);
  file->set_shard(0);
  file->set_bytes(rest_size);
  file->set_rows(rows);
  file->set_crc32(
      static_cast<uint32_t>(crc32(crc32(0L, Z_NULL, 0), rest, static_cast<uInt>(rest_size))));
  std::string text;
  Check(google::protobuf::TextFormat::PrintToString(manifest, &text));
  WriteFile("MANIFEST", text.data(), text.size());
  Load(*config);
  return 0;
}
