// Fuzzes the job config as `--config=FILE` reads it (coordinator/job_config.h): the input is the
// file's text. Two paths run on it:
//  - JobConfigFromFlags with --config naming a file that holds the input: text-format parsing, the
//    merge over the flags' defaults, optimizer resolution, the derived tables and
//    ValidateJobConfig.
//  - The input parsed as a JobConfig on its own, tables and all, given to ValidateJobConfig and,
//  when
//    that accepts it, to ParameterServerImpl::Create, which must not crash on whatever tables pass.
// A config that one path accepts must satisfy what the rest of psrec assumes of it.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <set>
#include <string>

#include "absl/flags/declare.h"
#include "absl/flags/flag.h"
#include "common/job_config.h"
#include "google/protobuf/stubs/logging.h"
#include "google/protobuf/text_format.h"
#include "proto/config.pb.h"
#include "ps/server.h"

ABSL_DECLARE_FLAG(std::string, config);

namespace {

void Check(bool ok) {
  if (!ok) std::abort();
}

// The file --config names: one per fuzzer process, rewritten for every input.
std::string* config_path = nullptr;

void WriteConfigFile(const uint8_t* data, size_t size) {
  FILE* f = std::fopen(config_path->c_str(), "wb");
  Check(f != nullptr);
  Check(std::fwrite(data, 1, size, f) == size);
  Check(std::fclose(f) == 0);
}

void ServerAccepts(const psrec::JobConfig& config) {
  const uint32_t shards = config.num_shards() == 0 ? 1 : config.num_shards();
  for (uint32_t shard : {0u, shards - 1}) {
    auto server = psrec::ParameterServerImpl::Create(config, shard);
    if (server.ok()) (*server)->BeginShutdown();
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  // A text-format parse error is logged by protobuf before it returns false; the status says the
  // same, and the log would flood the fuzzer's output.
  google::protobuf::SetLogHandler(
      [](google::protobuf::LogLevel, const char*, int, const std::string&) {});
  const char* tmp = std::getenv("TMPDIR");
  config_path =
      new std::string(std::string(tmp != nullptr ? tmp : "/tmp") + "/psrec_job_config_fuzzer." +
                      std::to_string(getpid()) + ".textproto");
  absl::SetFlag(&FLAGS_config, *config_path);
  std::atexit([] { unlink(config_path->c_str()); });
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  WriteConfigFile(data, size);
  absl::StatusOr<psrec::JobConfig> from_flags = psrec::JobConfigFromFlags({});
  if (from_flags.ok()) {
    Check(psrec::ValidateJobConfig(*from_flags).ok());
    Check(psrec::ConfigDifferences(*from_flags, *from_flags).empty());
    ServerAccepts(*from_flags);
  } else {
    Check(!from_flags.status().message().empty());
  }

  psrec::JobConfig raw;
  const std::string text(reinterpret_cast<const char*>(data), size);
  if (!google::protobuf::TextFormat::ParseFromString(text, &raw)) return 0;
  if (psrec::ValidateJobConfig(raw).ok()) ServerAccepts(raw);
  if (from_flags.ok()) psrec::ConfigDifferences(raw, *from_flags);
  return 0;
}
