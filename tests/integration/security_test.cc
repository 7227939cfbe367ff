// A real `psrec ps` process with --auth_token_file, and with mutual TLS too, against real gRPC
// clients on 127.0.0.1: the right credentials train, wrong ones change nothing and are logged.
#include "common/security.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/reflection.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "proto/ps.grpc.pb.h"
#include "tests/test_util.h"

namespace psrec {
namespace {

namespace fs = std::filesystem;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;
using testing_util::FreshDir;
using testing_util::ReadFile;
using testing_util::Result;
using testing_util::RunPsrec;
using testing_util::SyntheticData;
using testing_util::TestCertificates;

constexpr char kToken[] = "integration-s3cret";

// `psrec ps` in the background with its stderr in `log`; killed when it goes out of scope.
class PsProcess {
 public:
  PsProcess(const fs::path& dir, const std::vector<std::string>& security_flags)
      : port_file_(dir / "ps.port"), log_(dir / "ps.log") {
    std::vector<std::string> args = {PSREC_BINARY,
                                     "ps",
                                     "--shard=0",
                                     "--num_shards=1",
                                     "--host=127.0.0.1",
                                     "--port=0",
                                     "--port_file=" + port_file_.string(),
                                     "--model=bias",
                                     "--split=user_time",
                                     "--dim=4",
                                     "--consistency=async"};
    args.insert(args.end(), security_flags.begin(), security_flags.end());
    pid_ = ::fork();
    if (pid_ == 0) {
      if (std::freopen(log_.c_str(), "w", stderr) == nullptr) ::_exit(126);
      std::vector<char*> argv;
      for (std::string& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      ::execv(PSREC_BINARY, argv.data());
      ::_exit(127);
    }
  }
  ~PsProcess() { Stop(); }

  std::string WaitForAddress() const {
    for (int i = 0; i < 300; ++i) {
      std::ifstream in(port_file_);
      int port = 0;
      if (in >> port && port > 0) return absl::StrCat("127.0.0.1:", port);
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    ADD_FAILURE() << "no port in " << port_file_ << "\n" << ReadFile(log_);
    return "";
  }

  // SIGTERM, then the whole log.
  std::string Stop() {
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      int status = 0;
      ::waitpid(pid_, &status, 0);
      pid_ = -1;
    }
    return ReadFile(log_);
  }

 private:
  fs::path port_file_, log_;
  pid_t pid_ = -1;
};

std::unique_ptr<grpc::ClientContext> Context(const std::string& authorization) {
  auto context = std::make_unique<grpc::ClientContext>();
  context->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  if (!authorization.empty()) context->AddMetadata("authorization", authorization);
  return context;
}

// A client of the server at one address with one set of credentials. `authorization` is added to
// every call by hand when not empty (CreatePeerChannel adds the token itself).
class Client {
 public:
  Client(std::shared_ptr<grpc::Channel> channel, std::string authorization = "")
      : stub_(ParameterServer::NewStub(std::move(channel))),
        authorization_(std::move(authorization)) {}

  grpc::Status Push(const PushRequest& request) {
    PushResponse response;
    return stub_->Push(Context(authorization_).get(), request, &response);
  }

  grpc::Status Pull(uint32_t table, const std::vector<uint64_t>& keys, std::vector<float>* values) {
    PullRequest request;
    RowBlock* block = request.add_blocks();
    block->set_table(table);
    block->mutable_keys()->Add(keys.begin(), keys.end());
    PullResponse response;
    grpc::Status status = stub_->Pull(Context(authorization_).get(), request, &response);
    if (status.ok()) {
      EXPECT_EQ(response.blocks_size(), 1);
      values->assign(response.blocks(0).values().begin(), response.blocks(0).values().end());
    }
    return status;
  }

  // The push on the data path: alone on a Stream, its status from the answer or from the stream.
  grpc::Status StreamPush(const PushRequest& push) {
    const std::unique_ptr<grpc::ClientContext> context = Context(authorization_);
    auto stream = stub_->Stream(context.get());
    StreamRequest request;
    *request.mutable_push() = push;
    StreamResponse response;
    if (stream->Write(request) && stream->Read(&response)) {
      stream->WritesDone();
      (void)stream->Finish();
      return grpc::Status(static_cast<grpc::StatusCode>(response.code()), response.message());
    }
    return stream->Finish();
  }

  grpc::Status Stats(StatsResponse* stats) {
    return stub_->Stats(Context(authorization_).get(), StatsRequest(), stats);
  }

  grpc::Status GetConfig(GetConfigResponse* config) {
    return stub_->GetConfig(Context(authorization_).get(), GetConfigRequest(), config);
  }

 private:
  std::unique_ptr<ParameterServer::Stub> stub_;
  std::string authorization_;
};

std::vector<float> PullOk(Client& client, uint32_t table, const std::vector<uint64_t>& keys) {
  std::vector<float> values;
  const grpc::Status status = client.Pull(table, keys, &values);
  EXPECT_TRUE(status.ok()) << status.error_message();
  return values;
}

uint64_t RowsUpdated(Client& client) {
  StatsResponse stats;
  const grpc::Status status = client.Stats(&stats);
  EXPECT_TRUE(status.ok()) << status.error_message();
  return stats.rows_updated();
}

// The ps's first table, and a push of gradients for three of its rows.
struct Rows {
  uint32_t table = 0;
  std::vector<uint64_t> keys = {3, 14, 15};
  PushRequest push;
};

Rows MakeRows(Client& client) {
  GetConfigResponse config;
  const grpc::Status status = client.GetConfig(&config);
  EXPECT_TRUE(status.ok()) << status.error_message();
  Rows rows;
  if (config.config().tables_size() == 0) {
    ADD_FAILURE() << "no tables in " << config.DebugString();
    return rows;
  }
  const TableSpec& spec = config.config().tables(0);
  rows.table = spec.id();
  RowBlock* block = rows.push.add_blocks();
  block->set_table(spec.id());
  block->mutable_keys()->Add(rows.keys.begin(), rows.keys.end());
  for (size_t i = 0; i < rows.keys.size() * spec.width(); ++i) {
    block->add_values(0.25f + 0.125f * static_cast<float>(i));
  }
  return rows;
}

// Pushes with `good`, checks it trains, then pushes with each of `bad`: every one must fail with
// `bad_code` and leave the rows and the update count as they were.
void CheckOnlyGoodCredentialsPush(Client& good, std::vector<std::pair<std::string, Client>>& bad,
                                  const std::vector<grpc::StatusCode>& bad_codes) {
  const Rows rows = MakeRows(good);
  const std::vector<float> initial = PullOk(good, rows.table, rows.keys);
  const uint64_t updated_before = RowsUpdated(good);
  const grpc::Status pushed = good.Push(rows.push);
  ASSERT_TRUE(pushed.ok()) << pushed.error_message();
  const uint64_t updated = RowsUpdated(good);
  EXPECT_EQ(updated, updated_before + rows.keys.size());
  const std::vector<float> trained = PullOk(good, rows.table, rows.keys);
  EXPECT_NE(trained, initial);

  for (size_t i = 0; i < bad.size(); ++i) {
    const grpc::Status status = bad[i].second.Push(rows.push);
    EXPECT_EQ(status.error_code(), bad_codes[i]) << bad[i].first << ": " << status.error_message();
    std::vector<float> values;
    EXPECT_FALSE(bad[i].second.Pull(rows.table, rows.keys, &values).ok()) << bad[i].first;
    const grpc::Status streamed = bad[i].second.StreamPush(rows.push);
    EXPECT_EQ(streamed.error_code(), bad_codes[i])
        << bad[i].first << " on the stream: " << streamed.error_message();
  }
  EXPECT_EQ(PullOk(good, rows.table, rows.keys), trained);  // exact float equality
  EXPECT_EQ(RowsUpdated(good), updated);
}

std::shared_ptr<grpc::Channel> Plaintext(const std::string& address) {
  return grpc::CreateChannel(address, grpc::InsecureChannelCredentials());
}

std::shared_ptr<grpc::Channel> Tls(const std::string& address, const std::string& client) {
  const fs::path certs = TestCertificates();
  grpc::SslCredentialsOptions options;
  options.pem_root_certs = ReadFile(certs / "ca_a.pem");
  if (!client.empty()) {
    options.pem_cert_chain = ReadFile(certs / (client + ".pem"));
    options.pem_private_key = ReadFile(certs / (client + ".key"));
  }
  return grpc::CreateChannel(address, grpc::SslCredentials(options));
}

TEST(SecurityIntegrationTest, TokenOnlyServerRejectsCallsWithoutTheToken) {
  const fs::path dir = FreshDir("token");
  const fs::path token = dir / "token";
  std::ofstream(token) << kToken << "\n";
  PsProcess ps(dir, {"--auth_token_file=" + token.string()});
  const std::string address = ps.WaitForAddress();
  ASSERT_FALSE(address.empty());

  // The client side as the roles will use it: psrec's own channel, from the same flag.
  absl::FlagSaver saver;
  absl::SetFlag(&FLAGS_auth_token_file, token.string());
  ASSERT_TRUE(InitSecurityFromFlags().ok());
  Client good(CreatePeerChannel(address, grpc::ChannelArguments()));
  std::vector<std::pair<std::string, Client>> bad;
  bad.emplace_back("no token", Client(Plaintext(address)));
  bad.emplace_back("wrong token", Client(Plaintext(address), "Bearer not-the-token"));
  bad.emplace_back("token without Bearer", Client(Plaintext(address), kToken));
  CheckOnlyGoodCredentialsPush(
      good, bad,
      {grpc::StatusCode::UNAUTHENTICATED, grpc::StatusCode::UNAUTHENTICATED,
       grpc::StatusCode::UNAUTHENTICATED});
  // The right token by hand on a plain gRPC channel works too.
  Client by_hand(Plaintext(address), absl::StrCat("Bearer ", kToken));
  StatsResponse stats;
  EXPECT_TRUE(by_hand.Stats(&stats).ok());

  const std::string log = ps.Stop();
  EXPECT_THAT(log, AllOf(HasSubstr("[ps0]"),
                         HasSubstr("UNAUTHENTICATED: rejected /psrec.ParameterServer/Push from a "
                                   "plaintext client"),
                         HasSubstr("UNAUTHENTICATED: rejected /psrec.ParameterServer/Pull"),
                         HasSubstr("no auth token"), HasSubstr("wrong auth token")));
  EXPECT_THAT(log, Not(HasSubstr(kToken)));
}

TEST(SecurityIntegrationTest, MutualTlsServerRejectsBadCertificatesAndTokens) {
  const fs::path dir = FreshDir("tls");
  const fs::path certs = TestCertificates();
  const fs::path token = dir / "token";
  std::ofstream(token) << kToken << "\n";
  PsProcess ps(
      dir, {"--auth_token_file=" + token.string(), "--tls_cert=" + (certs / "server.pem").string(),
            "--tls_key=" + (certs / "server.key").string(),
            "--tls_ca=" + (certs / "ca_a.pem").string()});
  const std::string address = ps.WaitForAddress();
  ASSERT_FALSE(address.empty());

  absl::FlagSaver saver;
  absl::SetFlag(&FLAGS_auth_token_file, token.string());
  absl::SetFlag(&FLAGS_tls_cert, (certs / "client.pem").string());
  absl::SetFlag(&FLAGS_tls_key, (certs / "client.key").string());
  absl::SetFlag(&FLAGS_tls_ca, (certs / "ca_a.pem").string());
  ASSERT_TRUE(InitSecurityFromFlags().ok());
  Client good(CreatePeerChannel(address, grpc::ChannelArguments()));
  const std::string bearer = absl::StrCat("Bearer ", kToken);
  std::vector<std::pair<std::string, Client>> bad;
  bad.emplace_back("good certificate, no token", Client(Tls(address, "client")));
  bad.emplace_back("good certificate, wrong token", Client(Tls(address, "client"), "Bearer x"));
  // The TLS handshake refuses these before any RPC starts, so gRPC reports UNAVAILABLE.
  bad.emplace_back("certificate of another CA", Client(Tls(address, "rogue"), bearer));
  bad.emplace_back("no client certificate", Client(Tls(address, ""), bearer));
  bad.emplace_back("plaintext", Client(Plaintext(address), bearer));
  CheckOnlyGoodCredentialsPush(good, bad,
                               {grpc::StatusCode::UNAUTHENTICATED,
                                grpc::StatusCode::UNAUTHENTICATED, grpc::StatusCode::UNAVAILABLE,
                                grpc::StatusCode::UNAVAILABLE, grpc::StatusCode::UNAVAILABLE});

  const std::string log = ps.Stop();
  EXPECT_THAT(log, AllOf(HasSubstr("UNAUTHENTICATED: rejected /psrec.ParameterServer/Push from the "
                                   "TLS client 'CN=psrec-client'"),
                         HasSubstr("no auth token"), HasSubstr("wrong auth token")));
  EXPECT_THAT(log, Not(HasSubstr(kToken)));
}

struct Exit {
  int code = -1;
  std::string err;
};

Exit RunPs(const fs::path& dir, const std::vector<std::string>& flags) {
  std::vector<std::string> quoted;
  for (const std::string& f : flags) quoted.push_back("'" + f + "'");
  const fs::path err = dir / "stderr.txt";
  const std::string command =
      absl::StrCat("timeout -k 5 60 ", PSREC_BINARY, " ps --host=127.0.0.1 --port=0 ",
                   absl::StrJoin(quoted, " "), " >/dev/null 2>", err.string());
  const int status = std::system(command.c_str());
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, ReadFile(err)};
}

TEST(SecurityIntegrationTest, BadSecurityFlagsExitTwoNamingFlagAndFile) {
  const fs::path dir = FreshDir("bad_flags");
  const fs::path certs = TestCertificates();
  const std::string missing = (dir / "missing_token").string();
  Exit r = RunPs(dir, {"--auth_token_file=" + missing});
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_THAT(r.err, HasSubstr("psrec ps: --auth_token_file=" + missing + ": cannot open"));

  const fs::path empty = dir / "empty_token";
  std::ofstream(empty) << "\n";
  r = RunPs(dir, {"--auth_token_file=" + empty.string()});
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_THAT(r.err, HasSubstr("psrec ps: --auth_token_file=" + empty.string() + " is empty"));

  r = RunPs(dir, {"--tls_cert=" + (certs / "server.pem").string(),
                  "--tls_key=" + (certs / "server.key").string()});
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_THAT(r.err, HasSubstr("without --tls_ca"));

  r = RunPs(
      dir, {"--tls_cert=" + (certs / "server.pem").string(),
            "--tls_key=" + (dir / "no_key").string(), "--tls_ca=" + (certs / "ca_a.pem").string()});
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_THAT(r.err, HasSubstr("psrec ps: --tls_key=" + (dir / "no_key").string()));
}

TEST(SecurityIntegrationTest, HelpListsTheSecurityFlags) {
  const fs::path dir = FreshDir("help");
  const std::string command =
      absl::StrCat(PSREC_BINARY, " ps --help >", (dir / "help.txt").string(), " 2>&1");
  std::system(command.c_str());
  const std::string help = ReadFile(dir / "help.txt");
  for (const char* flag : {"--tls_cert", "--tls_key", "--tls_ca", "--auth_token_file"}) {
    EXPECT_THAT(help, HasSubstr(flag));
  }
}

// Every role of a whole cluster under mutual TLS and the token: the servers refuse any call
// without both, so the job can only finish if every channel of every role carries them.
TEST(SecurityIntegrationTest, AWholeClusterTrainsUnderMutualTlsAndTheToken) {
  const fs::path dir = FreshDir("cluster");
  const fs::path certs = TestCertificates();
  const fs::path token = dir / "token";
  std::ofstream(token) << kToken << "\n";
  const std::vector<std::string> credentials = {"--tls_cert=" + (certs / "server.pem").string(),
                                                "--tls_key=" + (certs / "server.key").string(),
                                                "--tls_ca=" + (certs / "ca_a.pem").string(),
                                                "--auth_token_file=" + token.string()};
  std::vector<std::string> args = {"train",
                                   "--ps_shards=2",
                                   "--workers=2",
                                   "--data=" + SyntheticData().string(),
                                   "--epochs=2",
                                   "--dim=8",
                                   "--out_dir=" + (dir / "out").string()};
  args.insert(args.end(), credentials.begin(), credentials.end());
  const Result secure = RunPsrec(args, dir);
  EXPECT_EQ(secure.exit_code, 0) << secure.err;
  EXPECT_THAT(secure.out, HasSubstr("test_mae="));
  EXPECT_THAT(secure.err, Not(HasSubstr("rejected")));
  EXPECT_THAT(secure.err, Not(HasSubstr(kToken)));
}

}  // namespace
}  // namespace psrec
