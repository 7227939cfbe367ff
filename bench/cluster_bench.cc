// Distributed throughput, measured in one run so that the ratios survive a noisy machine.
//
//   build/bench/cluster_bench [--psrec=build/psrec] [--data=DIR] [--epochs=5] [--rounds=200]
//
// 1. Training ratings/s of `psrec train`, best of --repeats runs: in-process, 1 server x 1 worker
//    and 2 x 2 (sync and async), each as real processes on 127.0.0.1, from the metrics file's
//    training seconds (evaluation excluded), with the ratio to in-process.
// 2. Raw pull and push throughput in floats/s: one parameter server in this process on loopback and
//    one RemoteStore client, rounds of 8192 keys x 32 floats; beside it the same on a LocalStore.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <numeric>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/allocator.h"
#include "grpcpp/grpcpp.h"
#include "ps/local_store.h"
#include "ps/optimizer.h"
#include "ps/server.h"
#include "worker/remote_store.h"

ABSL_FLAG(std::string, psrec, "build/psrec", "The psrec binary to benchmark.");
ABSL_FLAG(std::string, data, "", "Ratings directory; empty: psrec's own search.");
ABSL_FLAG(int32_t, epochs, 5, "Epochs per training run.");
ABSL_FLAG(int32_t, rounds, 200, "Pull and push rounds in the raw benchmark.");
ABSL_FLAG(int32_t, repeats, 3, "Runs of each training mode; the best is reported.");
ABSL_FLAG(bool, train, true, "Run the training part.");
ABSL_FLAG(bool, raw, true, "Run the raw pull/push part.");
ABSL_FLAG(bool, raw_local, true, "Measure the LocalStore too in the raw part.");
ABSL_FLAG(int32_t, raw_keys, 8192, "Keys per call in the raw part's large calls.");

namespace psrec {
namespace {

// Runs `psrec train` with `flags` and returns ratings/s over the training seconds of every epoch.
double TrainRateOnce(const std::string& flags, const std::string& tag) {
  const std::string metrics = absl::StrCat("/tmp/psrec_cluster_bench_", tag, ".json");
  std::string command = absl::StrCat(
      absl::GetFlag(FLAGS_psrec), " train --split=random --epochs=", absl::GetFlag(FLAGS_epochs),
      " --metrics_out=", metrics, " --out_dir=/tmp/psrec_cluster_bench_", tag, " ", flags);
  if (!absl::GetFlag(FLAGS_data).empty()) command += " --data=" + absl::GetFlag(FLAGS_data);
  command += " >/dev/null 2>/tmp/psrec_cluster_bench_" + tag + ".log";
  if (std::system(command.c_str()) != 0) {
    std::fprintf(stderr, "cluster_bench: '%s' failed; see /tmp/psrec_cluster_bench_%s.log\n",
                 command.c_str(), tag.c_str());
    std::exit(1);
  }
  std::ifstream in(metrics);
  std::stringstream text;
  text << in.rdbuf();
  const std::string json = text.str();
  const std::regex epoch("\"train_seconds\": ([0-9.]+), \"examples\": ([0-9]+)");
  double seconds = 0, examples = 0;
  for (auto it = std::sregex_iterator(json.begin(), json.end(), epoch);
       it != std::sregex_iterator(); ++it) {
    seconds += std::stod((*it)[1]);
    examples += std::stod((*it)[2]);
  }
  return examples / seconds;
}

// The best of --repeats runs: a run slowed by a neighbour says little about the code.
double TrainRate(const std::string& flags, const std::string& tag) {
  double best = 0;
  for (int r = 0; r < absl::GetFlag(FLAGS_repeats); ++r)
    best = std::max(best, TrainRateOnce(flags, tag));
  return best;
}

JobConfig RawConfig() {
  JobConfig config;
  config.set_num_shards(1);
  config.set_num_workers(1);
  config.set_consistency(ASYNC);
  config.set_seed(1);
  config.mutable_optimizer()->set_kind(SGD);
  config.mutable_optimizer()->set_lr(0.01f);
  (void)ResolveOptimizerConfig(config.mutable_optimizer());
  TableSpec* spec = config.add_tables();
  spec->set_id(0);
  spec->set_name("bench");
  spec->set_width(32);
  spec->set_init(UNIFORM);
  spec->set_init_scale(0.01f);
  return config;
}

struct RawRates {
  double pull = 0, push = 0;
};

// Floats/s of `rounds` pulls, then `rounds` pushes, of 8192 keys drawn from 100k rows.
RawRates Measure(ParamStore& store, int rounds, size_t kKeys = 8192) {
  constexpr size_t kWidth = 32;
  std::vector<std::vector<uint64_t>> keys(16, std::vector<uint64_t>(kKeys));
  for (size_t b = 0; b < keys.size(); ++b) {
    std::iota(keys[b].begin(), keys[b].end(), b * 6151);  // overlapping windows of 100k rows
  }
  std::vector<float> values(kKeys * kWidth), grads(kKeys * kWidth, 1e-3f);
  RawRates rates;
  absl::Time start = absl::Now();
  for (int r = 0; r < rounds; ++r) {
    const PullBlock block{0, keys[r % keys.size()], absl::MakeSpan(values)};
    if (!store.Pull({&block, 1}).ok()) std::exit(1);
  }
  rates.pull = rounds * double(kKeys * kWidth) / absl::ToDoubleSeconds(absl::Now() - start);
  start = absl::Now();
  for (int r = 0; r < rounds; ++r) {
    const PushBlock block{0, keys[r % keys.size()], grads};
    if (!store.Push({&block, 1}).ok()) std::exit(1);
  }
  // A RemoteStore pipelines pushes: the last one counts once it has landed.
  if (auto* remote = dynamic_cast<RemoteStore*>(&store);
      remote != nullptr && !remote->Flush().ok()) {
    std::exit(1);
  }
  rates.push = rounds * double(kKeys * kWidth) / absl::ToDoubleSeconds(absl::Now() - start);
  return rates;
}

void RawBenchmark() {
  const JobConfig config = RawConfig();
  const int rounds = absl::GetFlag(FLAGS_rounds);
  auto local = LocalStore::Create(config.tables(), config.optimizer(), config.seed());
  if (!local.ok()) std::exit(1);
  const size_t keys = absl::GetFlag(FLAGS_raw_keys);
  const RawRates base =
      absl::GetFlag(FLAGS_raw_local) ? Measure(**local, rounds, keys) : RawRates{};

  auto service = ParameterServerImpl::Create(config, 0);
  if (!service.ok()) std::exit(1);
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  builder.SetMaxReceiveMessageSize(-1);
  builder.RegisterService(service->get());
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  auto remote = RemoteStore::Create({absl::StrCat("127.0.0.1:", port)}, config, 0);
  if (!remote.ok()) std::exit(1);
  Measure(**remote, 10, keys);  // connect and warm up
  const RawRates grpc_rates = Measure(**remote, rounds, keys);
  const RawRates small = Measure(**remote, rounds * 10, 512);
  remote->reset();  // its streams end; a server's Shutdown waits for every open one
  server->Shutdown();

  std::printf("\nraw pull/push, %zu keys x 32 floats per call, %d calls each\n", keys, rounds);
  std::printf("%-28s %16s %16s\n", "store", "pull floats/s", "push floats/s");
  if (absl::GetFlag(FLAGS_raw_local)) {
    std::printf("%-28s %16.3g %16.3g\n", "LocalStore (in-process)", base.pull, base.push);
  }
  std::printf("%-28s %16.3g %16.3g\n", "1 ps over gRPC loopback", grpc_rates.pull, grpc_rates.push);
  if (absl::GetFlag(FLAGS_raw_local)) {
    std::printf("%-28s %15.2fx %15.2fx\n", "gRPC / in-process", grpc_rates.pull / base.pull,
                grpc_rates.push / base.push);
  }
  std::printf("small calls (512 keys x 32 floats): %.0f pulls/s, %.0f pushes/s\n",
              small.pull / (512 * 32), small.push / (512 * 32));
}

void TrainBenchmark() {
  std::printf("training throughput, random split, %d epochs, default flags, best of %d runs\n",
              absl::GetFlag(FLAGS_epochs), absl::GetFlag(FLAGS_repeats));
  std::printf("%-26s %14s %16s\n", "mode", "ratings/s", "vs in-process");
  const double base = TrainRate("", "local");
  std::printf("%-26s %14.0f %15.2fx\n", "in-process", base, 1.0);
  struct Mode {
    const char* name;
    const char* flags;
    const char* tag;
  };
  for (const Mode& m :
       {Mode{"1 ps x 1 worker, sync", "--ps_shards=1 --workers=1", "1x1"},
        Mode{"1 ps x 1 worker, async", "--ps_shards=1 --workers=1 --consistency=async", "1x1async"},
        Mode{"2 ps x 2 workers, sync", "--ps_shards=2 --workers=2", "2x2sync"},
        Mode{"2 ps x 2 workers, async", "--ps_shards=2 --workers=2 --consistency=async",
             "2x2async"}}) {
    const double rate = TrainRate(m.flags, m.tag);
    std::printf("%-26s %14.0f %15.2fx\n", m.name, rate, rate / base);
  }
}

}  // namespace
}  // namespace psrec

int main(int argc, char** argv) {
  psrec::TuneAllocator();
  absl::ParseCommandLine(argc, argv);
  if (absl::GetFlag(FLAGS_train)) psrec::TrainBenchmark();
  if (absl::GetFlag(FLAGS_raw)) psrec::RawBenchmark();
  return 0;
}
