// RemoteStore against real gRPC servers on loopback. The servers are a small ParameterServer
// service over one LocalStore per shard, written here so that these tests pin the client's
// behaviour (routing, one request per shard, scatter order, errors) independently of the real
// server in ps/server.*.
#include "worker/remote_store.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/model.h"
#include "common/rng.h"
#include "common/sharding.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "ps/local_store.h"
#include "ps/optimizer.h"
#include "tests/fake_dns.h"
#include "tests/ops_test_util.h"
#include "worker/trainer.h"

namespace psrec {
namespace {

using ::testing::HasSubstr;
using testing_util::FakeDns;

// One shard: a LocalStore behind the ParameterServer service's Stream, counting what it
// receives. It reads and writes the stream's messages with protobuf's generated code, so these
// tests also pin the client's hand-written wire format (worker/stream_codec.h) to proto/ps.proto.
class FakeShard final : public ParameterServer::Service {
 public:
  FakeShard(const JobConfig& config, uint32_t shard) : config_(config), shard_(shard) {
    store_ = LocalStore::Create(config.tables(), config.optimizer(), config.seed()).value();
  }

  grpc::Status Stream(grpc::ServerContext* context,
                      grpc::ServerReaderWriter<StreamResponse, StreamRequest>* stream) override {
    StreamRequest request;
    while (stream->Read(&request)) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        ++requests;
      }
      StreamResponse response;
      if (absl::Status s = Handle(context, &request, &response); !s.ok()) {
        response.Clear();
        response.set_code(static_cast<int32_t>(s.code()));
        response.set_message(std::string(s.message()));
      }
      if (!stream->Write(response)) break;
    }
    return grpc::Status::OK;
  }

  // A push, then a pull, as the real server handles a StreamRequest.
  absl::Status Handle(grpc::ServerContext* context, StreamRequest* request,
                      StreamResponse* response) {
    if (request->has_push()) {
      RestoreKeys(request->mutable_push()->mutable_blocks());
      if (absl::Status s = ApplyPush(request->push()); !s.ok()) return s;
    }
    if (!request->has_pull()) return absl::OkStatus();
    RestoreKeys(request->mutable_pull()->mutable_blocks());
    Delay(context);
    std::lock_guard<std::mutex> lock(mu_);
    ++pulls;
    Record(request->pull().clock(), request->pull().blocks());
    std::vector<PullBlock> blocks;
    size_t floats = 0;
    for (const RowBlock& in : request->pull().blocks()) {
      const Table* table = store_->table(in.table());
      if (table == nullptr) return absl::InvalidArgumentError("unknown table");
      floats += in.keys_size() * table->width();
    }
    response->mutable_values()->Resize(static_cast<int>(floats), 0.0f);
    float* out = response->mutable_values()->mutable_data();
    for (const RowBlock& in : request->pull().blocks()) {
      const size_t n = in.keys_size() * store_->table(in.table())->width();
      blocks.push_back({in.table(), absl::MakeConstSpan(in.keys().data(), in.keys_size()),
                        absl::MakeSpan(out, n)});
      out += n;
    }
    return store_->Pull(blocks);
  }

  absl::Status ApplyPush(const PushRequest& request) {
    std::lock_guard<std::mutex> lock(mu_);
    ++pushes;
    last_worker_id = request.worker_id();
    Record(request.clock(), request.blocks());
    std::vector<PushBlock> blocks;
    for (const RowBlock& in : request.blocks()) {
      blocks.push_back({in.table(), absl::MakeConstSpan(in.keys().data(), in.keys_size()),
                        absl::MakeConstSpan(in.values().data(), in.values_size())});
    }
    return store_->Push(blocks);
  }

  grpc::Status GetConfig(grpc::ServerContext*, const GetConfigRequest*,
                         GetConfigResponse* response) override {
    *response->mutable_config() = config_;
    response->set_shard(shard_);
    return grpc::Status::OK;
  }

  grpc::Status Stats(grpc::ServerContext*, const StatsRequest*, StatsResponse* response) override {
    std::lock_guard<std::mutex> lock(mu_);
    response->set_shard(shard_);
    response->set_pull_requests(pulls);
    response->set_push_requests(pushes);
    return grpc::Status::OK;
  }

  void set_pull_delay(absl::Duration delay) { pull_delay_ = delay; }

  // Read after the calls have returned; written under mu_ by the handlers.
  int pulls = 0, pushes = 0;
  int requests = 0;   // stream messages: a push riding in a pull's request is one
  uint64_t keys = 0;  // received, over every call
  uint64_t last_clock = 0;
  uint32_t last_worker_id = 0;
  bool misrouted = false;  // a key that ShardOf puts on another shard

 private:
  void Record(uint64_t clock, const google::protobuf::RepeatedPtrField<RowBlock>& blocks) {
    last_clock = clock;
    for (const RowBlock& block : blocks) {
      keys += block.keys_size();
      for (uint64_t key : block.keys()) {
        misrouted |= ShardOf(block.table(), key, config_.num_shards()) != shard_;
      }
    }
  }

  // Stalls a pull (until cancelled) to exercise the client's deadline.
  void Delay(grpc::ServerContext* context) {
    const absl::Time until = absl::Now() + pull_delay_;
    while (absl::Now() < until && !context->IsCancelled()) absl::SleepFor(absl::Milliseconds(5));
  }

  static void RestoreKeys(google::protobuf::RepeatedPtrField<RowBlock>* blocks) {
    for (RowBlock& block : *blocks) {
      if (!block.keys_delta()) continue;
      uint64_t key = 0;
      for (uint64_t& k : *block.mutable_keys()) k = key += k;
      block.set_keys_delta(false);
    }
  }

  const JobConfig config_;
  const uint32_t shard_;
  std::unique_ptr<LocalStore> store_;
  std::mutex mu_;
  absl::Duration pull_delay_ = absl::ZeroDuration();
};

// config.num_shards() FakeShards, each in its own server on 127.0.0.1 with a port of its choosing.
class Cluster {
 public:
  explicit Cluster(const JobConfig& config) {
    for (uint32_t i = 0; i < config.num_shards(); ++i) {
      shards.push_back(std::make_unique<FakeShard>(config, i));
      grpc::ServerBuilder builder;
      int port = 0;
      builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
      builder.RegisterService(shards.back().get());
      servers_.push_back(builder.BuildAndStart());
      addresses.push_back(absl::StrCat("127.0.0.1:", port));
    }
  }
  ~Cluster() {
    for (auto& server : servers_) server->Shutdown(absl::ToChronoTime(absl::Now()));
  }

  std::vector<std::unique_ptr<FakeShard>> shards;
  std::vector<std::string> addresses;

 private:
  std::vector<std::unique_ptr<grpc::Server>> servers_;
};

// An address nothing listens on: a port the kernel handed out and that was released again.
std::string DeadAddress() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr = {};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  EXPECT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), len), 0);
  EXPECT_EQ(getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  close(fd);
  return absl::StrCat("127.0.0.1:", ntohs(addr.sin_port));
}

TableSpec Spec(uint32_t id, uint32_t width, InitKind init) {
  TableSpec spec;
  spec.set_id(id);
  spec.set_name(absl::StrCat("t", id));
  spec.set_width(width);
  spec.set_init(init);
  spec.set_init_scale(0.1f);
  spec.set_l2(0.01f);
  return spec;
}

JobConfig TwoTables(uint32_t num_shards) {
  JobConfig config;
  *config.add_tables() = Spec(0, 3, UNIFORM);
  *config.add_tables() = Spec(5, 1, ZEROS);
  config.mutable_optimizer()->set_kind(ADAM);
  config.mutable_optimizer()->set_lr(0.05f);
  EXPECT_TRUE(ResolveOptimizerConfig(config.mutable_optimizer()).ok());
  config.set_seed(11);
  config.set_num_shards(num_shards);
  config.set_num_workers(1);
  config.set_consistency(ASYNC);
  return config;
}

std::unique_ptr<RemoteStore> MustConnect(const Cluster& cluster, const JobConfig& config,
                                         uint32_t worker_id = 0,
                                         absl::Duration deadline = absl::Seconds(10)) {
  auto store = RemoteStore::Create(cluster.addresses, config, worker_id, deadline);
  EXPECT_TRUE(store.ok()) << store.status();
  // The in-test servers apply pushes as they come and never hold a pull for its clock, so a pull
  // overlapping the previous push could read rows before it: make every push wait for its answer.
  // The real server's SYNC pulls wait, and tests/integration checks the pipelined path against it.
  (*store)->set_pipeline(false);
  return std::move(store).value();
}

// Keys in no particular order, each once.
std::vector<uint64_t> Keys(size_t n, uint64_t salt) {
  std::vector<uint64_t> keys;
  for (uint64_t i = 0; i < n; ++i) keys.push_back(HashCombine(salt, i) % 100000);
  std::sort(keys.begin(), keys.end());
  keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
  Shuffle(&keys, salt);
  return keys;
}

std::vector<float> Grads(size_t n, uint64_t salt) {
  std::vector<float> grads(n);
  for (size_t i = 0; i < n; ++i)
    grads[i] = static_cast<float>(HashCombine(salt, i) % 2001) / 1000 - 1;
  return grads;
}

// Pulls `keys` of tables 0 and 5 into two vectors.
std::vector<std::vector<float>> PullBoth(ParamStore& store, const std::vector<uint64_t>& emb_keys,
                                         const std::vector<uint64_t>& bias_keys) {
  std::vector<std::vector<float>> out = {std::vector<float>(emb_keys.size() * 3),
                                         std::vector<float>(bias_keys.size())};
  const PullBlock blocks[] = {{0, emb_keys, absl::MakeSpan(out[0])},
                              {5, bias_keys, absl::MakeSpan(out[1])}};
  EXPECT_TRUE(store.Pull(blocks).ok());
  return out;
}

TEST(RemoteStoreTest, ThreeShardsGiveBitwiseTheRowsOfOneLocalStore) {
  const JobConfig config = TwoTables(3);
  Cluster cluster(config);
  std::unique_ptr<RemoteStore> remote = MustConnect(cluster, config);
  auto local = LocalStore::Create(config.tables(), config.optimizer(), config.seed()).value();
  for (uint64_t round = 0; round < 3; ++round) {
    const std::vector<uint64_t> emb_keys = Keys(300, round), bias_keys = Keys(120, round + 100);
    EXPECT_EQ(PullBoth(*remote, emb_keys, bias_keys), PullBoth(*local, emb_keys, bias_keys));
    const std::vector<float> g_emb = Grads(emb_keys.size() * 3, round);
    const std::vector<float> g_bias = Grads(bias_keys.size(), round + 7);
    const PushBlock push[] = {{0, emb_keys, g_emb}, {5, bias_keys, g_bias}};
    ASSERT_TRUE(remote->Push(push).ok());
    ASSERT_TRUE(local->Push(push).ok());
    EXPECT_EQ(PullBoth(*remote, emb_keys, bias_keys), PullBoth(*local, emb_keys, bias_keys));
  }
  for (const auto& shard : cluster.shards) {
    EXPECT_GT(shard->keys, 100u) << "keys do not spread over the shards";
    EXPECT_FALSE(shard->misrouted);
    EXPECT_EQ(shard->pulls, 6);
    EXPECT_EQ(shard->pushes, 3);
  }
}

// A prefetching trainer's pattern (ParamStore::kMaxPullsInFlight): two pulls travel at once and
// are answered in order; a push made with both in flight goes at once, after them, and one made
// with a single pull in flight is held and rides in the next pull's request, applied before it.
TEST(RemoteStoreTest, TwoPullsTravelAtOnceAndAHeldPushRidesInTheNextPull) {
  const JobConfig config = TwoTables(3);
  Cluster cluster(config);
  auto remote = RemoteStore::Create(cluster.addresses, config, 0, absl::Seconds(10)).value();
  auto local = LocalStore::Create(config.tables(), config.optimizer(), config.seed()).value();
  const std::vector<uint64_t> a = Keys(200, 1), b = Keys(150, 2), c = Keys(100, 3);
  auto pull_local = [&](const std::vector<uint64_t>& keys) {
    std::vector<float> rows(keys.size() * 3);
    const PullBlock block{0, keys, absl::MakeSpan(rows)};
    EXPECT_TRUE(local->Pull({&block, 1}).ok());
    return rows;
  };
  auto push_both = [&](const std::vector<uint64_t>& keys, uint64_t salt) {
    const std::vector<float> grads = Grads(keys.size() * 3, salt);
    const PushBlock block{0, keys, grads};
    EXPECT_TRUE(local->Push({&block, 1}).ok());
    return remote->Push({&block, 1});
  };
  std::vector<float> rows_a(a.size() * 3), rows_b(b.size() * 3), rows_c(c.size() * 3);
  const PullBlock pull_a{0, a, absl::MakeSpan(rows_a)}, pull_b{0, b, absl::MakeSpan(rows_b)},
      pull_c{0, c, absl::MakeSpan(rows_c)};
  ASSERT_TRUE(remote->StartPull({&pull_a, 1}).ok());
  ASSERT_TRUE(remote->StartPull({&pull_b, 1}).ok());
  const std::vector<float> a_before = pull_local(a), b_before = pull_local(b);
  ASSERT_TRUE(push_both(a, 10).ok());  // two pulls in flight: sent now, behind them
  ASSERT_TRUE(remote->Wait().ok());
  EXPECT_EQ(rows_a, a_before);
  ASSERT_TRUE(remote->Wait().ok());
  EXPECT_EQ(rows_b, b_before);

  ASSERT_TRUE(remote->StartPull({&pull_c, 1}).ok());
  const std::vector<float> c_before = pull_local(c);
  ASSERT_TRUE(push_both(c, 11).ok());                 // one pull in flight: held
  ASSERT_TRUE(remote->StartPull({&pull_a, 1}).ok());  // carries the held push
  ASSERT_TRUE(remote->Wait().ok());
  EXPECT_EQ(rows_c, c_before);
  ASSERT_TRUE(remote->Wait().ok());
  EXPECT_EQ(rows_a, pull_local(a));  // after both pushes
  // Every request has been answered in order, so the counts are final: pull a, pull b, push a,
  // pull c, and push c riding in the last pull a (a held push a would make 4, a push c sent on
  // its own 6).
  for (const auto& shard : cluster.shards) {
    EXPECT_EQ(shard->requests, 5);
    EXPECT_EQ(shard->pushes, 2);
    EXPECT_EQ(shard->pulls, 4);
  }
}

// The coordinator's evaluation reads rows as no worker: pulls work, a push is refused before
// anything is sent.
TEST(RemoteStoreTest, AReaderPullsButCannotPush) {
  const JobConfig config = TwoTables(3);
  Cluster cluster(config);
  auto store = RemoteStore::CreateReader(cluster.addresses, config).value();
  const uint64_t key[] = {12345};
  float row[3];
  const PullBlock pull{0, key, absl::MakeSpan(row)};
  ASSERT_TRUE(store->Pull({&pull, 1}).ok());
  const float grad[3] = {1, 1, 1};
  const PushBlock push{0, key, grad};
  EXPECT_TRUE(absl::IsFailedPrecondition(store->Push({&push, 1})));
  for (const auto& shard : cluster.shards) EXPECT_EQ(shard->pushes, 0);
}

TEST(RemoteStoreTest, OneRequestPerShardPerCallEvenEmptyWithClockAndWorkerId) {
  const JobConfig config = TwoTables(3);
  Cluster cluster(config);
  std::unique_ptr<RemoteStore> store = MustConnect(cluster, config, /*worker_id=*/7);
  store->set_clock(42);
  ASSERT_TRUE(store->Push({}).ok());
  ASSERT_TRUE(store->Pull({}).ok());
  const uint64_t key[] = {12345};  // one key: two shards get an empty request
  float row[3];
  const PullBlock pull{0, key, absl::MakeSpan(row)};
  store->set_clock(43);
  ASSERT_TRUE(store->Pull({&pull, 1}).ok());
  for (const auto& shard : cluster.shards) {
    EXPECT_EQ(shard->pushes, 1);
    EXPECT_EQ(shard->pulls, 2);
    EXPECT_EQ(shard->last_clock, 43u);
    EXPECT_EQ(shard->last_worker_id, 7u);
  }
  EXPECT_EQ(cluster.shards[ShardOf(0, 12345, 3)]->keys, 1u);
  auto stats = store->Stats();
  ASSERT_TRUE(stats.ok()) << stats.status();
  for (uint32_t i = 0; i < 3; ++i) {
    EXPECT_EQ((*stats)[i].shard(), i);
    EXPECT_EQ((*stats)[i].pull_requests(), 2u);
  }
  auto configs = store->GetConfigs();
  ASSERT_TRUE(configs.ok()) << configs.status();
  for (uint32_t i = 0; i < 3; ++i) EXPECT_EQ((*configs)[i].shard(), i);
}

TEST(RemoteStoreTest, BadBlocksAreRejectedBeforeAnythingIsSent) {
  const JobConfig config = TwoTables(3);
  Cluster cluster(config);
  std::unique_ptr<RemoteStore> store = MustConnect(cluster, config);
  const uint64_t keys[] = {1, 2};
  float values[5];
  const PullBlock short_block{0, keys, absl::MakeSpan(values)};  // needs 6
  EXPECT_THAT(store->Pull({&short_block, 1}).message(), HasSubstr("need 6 values, got 5"));
  const PushBlock unknown{3, keys, absl::MakeSpan(values, 2)};
  EXPECT_TRUE(absl::IsInvalidArgument(store->Push({&unknown, 1})));
  for (const auto& shard : cluster.shards) EXPECT_EQ(shard->pulls + shard->pushes, 0);
}

TEST(RemoteStoreTest, CreateChecksAddresses) {
  const JobConfig config = TwoTables(2);
  EXPECT_TRUE(absl::IsInvalidArgument(RemoteStore::Create({"a:1"}, config, 0).status()));
  EXPECT_TRUE(absl::IsInvalidArgument(RemoteStore::Create({"a:1", ""}, config, 0).status()));
  EXPECT_TRUE(RemoteStore::Create({"a:1", "b:2"}, config, 0).ok());
}

// The three shards of TwoTables(3), with shard `down`'s address swapped for one where nothing
// listens, and a store over those addresses whose calls give up after 500 ms.
struct DownShard {
  explicit DownShard(uint32_t down) : addresses(cluster.addresses) {
    addresses[down] = DeadAddress();
    store = RemoteStore::Create(addresses, config, 0, absl::Milliseconds(500)).value();
  }

  const JobConfig config = TwoTables(3);
  Cluster cluster{config};
  std::vector<std::string> addresses;
  std::unique_ptr<RemoteStore> store;
};

TEST(RemoteStoreTest, ADownShardFailsNamingItsAddressWithinTheDeadline) {
  DownShard down(1);
  const std::vector<uint64_t> keys = Keys(50, 3);
  std::vector<float> rows(keys.size() * 3);
  const PullBlock pull{0, keys, absl::MakeSpan(rows)};
  const absl::Time start = absl::Now();
  const absl::Status s = down.store->Pull({&pull, 1});
  EXPECT_LT(absl::Now() - start, absl::Seconds(3));
  EXPECT_TRUE(absl::IsUnavailable(s) || absl::IsDeadlineExceeded(s)) << s;
  EXPECT_THAT(s.message(),
              HasSubstr(absl::StrCat("Pull to ps shard 1 (", down.addresses[1], ") failed")));
  EXPECT_FALSE(down.store->GetConfigs().ok());  // waits for the shard, but only until the deadline
  EXPECT_LT(absl::Now() - start, absl::Seconds(4));
}

TEST(RemoteStoreTest, APipelinedPushReportsItsFailureOnTheNextCall) {
  DownShard down(2);
  const std::vector<uint64_t> keys = Keys(50, 3);
  const std::vector<float> grads(keys.size() * 3, 0.5f);
  const PushBlock push{0, keys, grads};
  EXPECT_TRUE(down.store->Push({&push, 1}).ok()) << "a pipelined push returns once it is sent";
  const absl::Status s = down.store->Flush();
  EXPECT_THAT(s.message(),
              HasSubstr(absl::StrCat("Push to ps shard 2 (", down.addresses[2], ") failed")));
  EXPECT_TRUE(down.store->Flush().ok()) << "the failure is reported once";
}

TEST(RemoteStoreTest, ASlowShardFailsWithDeadlineExceeded) {
  const JobConfig config = TwoTables(2);
  Cluster cluster(config);
  cluster.shards[0]->set_pull_delay(absl::Seconds(5));
  auto store = RemoteStore::Create(cluster.addresses, config, 0, absl::Milliseconds(300)).value();
  const absl::Time start = absl::Now();
  const absl::Status s = store->Pull({});
  EXPECT_LT(absl::Now() - start, absl::Seconds(2));
  EXPECT_TRUE(absl::IsDeadlineExceeded(s)) << s;
  EXPECT_THAT(s.message(), HasSubstr(absl::StrCat("Pull to ps shard 0 (", cluster.addresses[0],
                                                  ") failed: DEADLINE_EXCEEDED")));
}

// A small rating set: 40 users, 30 items, ids far from dense indices.
Dataset SmallDataset() {
  Dataset data;
  for (int u = 0; u < 40; ++u) data.user_ids.push_back(1000 + 7 * u);
  for (int i = 0; i < 30; ++i) data.item_ids.push_back(50000 + 13 * i);
  for (uint32_t n = 0; n < 500; ++n) {
    const uint64_t h = HashCombine(99, n);
    data.ratings.push_back({static_cast<uint32_t>(h % 40), static_cast<uint32_t>((h >> 20) % 30),
                            0.5f * static_cast<float>(1 + (h >> 40) % 10), n});
  }
  return data;
}

JobConfig TrainerConfig(ModelKind model, uint32_t num_shards) {
  JobConfig config;
  config.set_model(model);
  config.set_dim(6);
  config.set_hidden(4);
  config.set_dropout(0.3f);
  config.set_loss(MAE);
  config.set_rating_offset(3.5f);
  config.set_init_scale(0.05f);
  config.mutable_optimizer()->set_kind(ADAM);
  config.mutable_optimizer()->set_lr(0.01f);
  EXPECT_TRUE(ResolveOptimizerConfig(config.mutable_optimizer()).ok());
  config.set_l2(1e-3f);
  config.set_batch_size(32);
  config.set_seed(5);
  config.set_num_shards(num_shards);
  config.set_num_workers(1);
  config.set_consistency(ASYNC);
  FillTableSpecs(&config);
  return config;
}

// Every parameter the data touches, table by table, pulled from `store`.
std::vector<std::vector<float>> AllParams(ParamStore& store, const Dataset& data,
                                          const JobConfig& config) {
  std::vector<uint64_t> users(data.user_ids.begin(), data.user_ids.end());
  std::vector<uint64_t> items(data.item_ids.begin(), data.item_ids.end());
  const uint64_t dense_key[] = {kDenseKey};
  std::vector<std::vector<float>> out;
  for (const TableSpec& spec : config.tables()) {
    absl::Span<const uint64_t> keys = spec.id() == kDenseTable ? absl::MakeConstSpan(dense_key)
                                      : spec.id() % 2 == 0     ? absl::MakeConstSpan(users)
                                                               : absl::MakeConstSpan(items);
    out.emplace_back(keys.size() * spec.width());
    const PullBlock block{spec.id(), keys, absl::MakeSpan(out.back())};
    EXPECT_TRUE(store.Pull({&block, 1}).ok());
  }
  return out;
}

TEST(RemoteStoreTest, TrainerOverRemoteStoreMatchesLocalStoreBitwise) {
  const Dataset data = SmallDataset();
  std::vector<uint32_t> rows(data.ratings.size());
  for (uint32_t i = 0; i < rows.size(); ++i) rows[i] = i;
  Shuffle(&rows, 3);
  for (uint32_t num_shards : {1u, 3u}) {
    for (ModelKind model : {BIAS, MLP}) {
      SCOPED_TRACE(absl::StrCat(num_shards, " shards, model ", static_cast<int>(model)));
      const JobConfig config = TrainerConfig(model, num_shards);
      Cluster cluster(config);
      std::unique_ptr<RemoteStore> remote = MustConnect(cluster, config);
      auto local = LocalStore::Create(config.tables(), config.optimizer(), config.seed()).value();
      auto remote_trainer = Trainer::Create(config, &data, remote.get()).value();
      auto local_trainer = Trainer::Create(config, &data, local.get()).value();
      auto remote_stats = remote_trainer->Train(rows, 10);
      auto local_stats = local_trainer->Train(rows, 10);
      ASSERT_TRUE(remote_stats.ok()) << remote_stats.status();
      ASSERT_TRUE(local_stats.ok()) << local_stats.status();
      EXPECT_EQ(remote_stats->batches, 16u);
      EXPECT_EQ(remote_stats->loss_sum, local_stats->loss_sum);
      EXPECT_EQ(AllParams(*remote, data, config), AllParams(*local, data, config));
    }
  }
}

std::unique_ptr<grpc::Server> Serve(FakeShard* shard, const std::string& host, int port) {
  grpc::ServerBuilder builder;
  builder.AddListeningPort(absl::StrCat(host, ":", port), grpc::InsecureServerCredentials());
  builder.RegisterService(shard);
  return builder.BuildAndStart();
}

// A shard made again under the same name at another address (a Kubernetes pod made again): the
// first call after the failed one finds it, although its channel's resolver, which failed while
// the name was gone, is backing off.
TEST(RemoteStoreTest, AShardMadeAgainAtANewAddressIsFoundByTheNextCall) {
  const JobConfig config = TwoTables(1);
  FakeDns dns;
  ASSERT_GT(dns.port(), 0);
  const int port = testing_util::UnusedPort();
  dns.Set("shard0.test", "127.0.0.1");
  FakeShard first_shard(config, 0);
  std::unique_ptr<grpc::Server> first = Serve(&first_shard, "127.0.0.1", port);
  ASSERT_NE(first, nullptr);
  auto store =
      RemoteStore::Create({dns.Target("shard0.test", port)}, config, 0, absl::Seconds(10)).value();
  const std::vector<uint64_t> keys = Keys(50, 3);
  std::vector<float> rows(keys.size() * 3);
  const PullBlock pull{0, keys, absl::MakeSpan(rows)};
  ASSERT_TRUE(store->Pull({&pull, 1}).ok());

  // The shard goes, and its name with it; the resolver fails three times, and so backs off for
  // at least 2 s.
  dns.Set("shard0.test", "");
  first->Shutdown(absl::ToChronoTime(absl::Now()));
  EXPECT_FALSE(store->Pull({&pull, 1}).ok());
  store->Reset();
  ASSERT_TRUE(dns.WaitForNotFound("shard0.test", 3));

  FakeShard second_shard(config, 0);
  std::unique_ptr<grpc::Server> second = Serve(&second_shard, "127.0.0.2", port);
  ASSERT_NE(second, nullptr);
  dns.Set("shard0.test", "127.0.0.2");
  const absl::Status s = store->Pull({&pull, 1});
  EXPECT_TRUE(s.ok()) << s;
  EXPECT_EQ(second_shard.pulls, 1);
  store.reset();
  second->Shutdown(absl::ToChronoTime(absl::Now()));
}

}  // namespace
}  // namespace psrec
