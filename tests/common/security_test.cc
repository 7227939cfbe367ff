#include "common/security.h"

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/reflection.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "google/protobuf/empty.pb.h"
#include "google/protobuf/wrappers.pb.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/health_check_service_interface.h"
#include "grpcpp/impl/client_unary_call.h"
#include "grpcpp/impl/rpc_method.h"
#include "gtest/gtest.h"
#include "proto/ps.grpc.pb.h"
#include "tests/test_util.h"

namespace psrec {
namespace {

namespace fs = std::filesystem;
using ::testing::AllOf;
using ::testing::HasSubstr;

fs::path WriteFile(const std::string& name, const std::string& contents) {
  const fs::path path = testing_util::TestRoot() / name;
  fs::create_directories(path.parent_path());
  std::ofstream(path) << contents;
  return path;
}

using testing_util::ReadFile;

// Two CAs; a server and a client certificate from CA "a", a rogue client certificate from CA "b".
// All leaf certificates name localhost and 127.0.0.1.
struct Certs {
  fs::path ca_a, ca_b;
  fs::path server_cert, server_key;
  fs::path client_cert, client_key;
  fs::path rogue_cert, rogue_key;
};

const Certs& TestCerts() {
  static const Certs certs = [] {
    const fs::path dir = testing_util::TestCertificates();
    Certs c;
    c.ca_a = dir / "ca_a.pem";
    c.ca_b = dir / "ca_b.pem";
    c.server_cert = dir / "server.pem";
    c.server_key = dir / "server.key";
    c.client_cert = dir / "client.pem";
    c.client_key = dir / "client.key";
    c.rogue_cert = dir / "rogue.pem";
    c.rogue_key = dir / "rogue.key";
    return c;
  }();
  return certs;
}

// Counts the pushes that reach it, so a test can tell that a rejected call ran no handler.
class CountingService final : public ParameterServer::Service {
 public:
  grpc::Status Push(grpc::ServerContext* context, const PushRequest* /*request*/,
                    PushResponse* /*response*/) override {
    ++pushes;
    if (context->client_metadata().count("authorization") > 0) saw_token = true;
    return grpc::Status::OK;
  }
  grpc::Status Stats(grpc::ServerContext* /*context*/, const StatsRequest* /*request*/,
                     StatsResponse* response) override {
    response->set_shard(7);
    return grpc::Status::OK;
  }

  std::atomic<int> pushes{0};
  std::atomic<bool> saw_token{false};
};

// The service on 127.0.0.1 behind ServerCredentials() and, if `check`, AddAuthCheck (called before
// the port is added when `check_first`, after it otherwise).
class TestServer {
 public:
  explicit TestServer(bool check = true, bool check_first = false) {
    grpc::EnableDefaultHealthCheckService(true);
    grpc::ServerBuilder builder;
    if (check && check_first) AddAuthCheck(&builder);
    builder.AddListeningPort("127.0.0.1:0", ServerCredentials(), &port_);
    if (check && !check_first) AddAuthCheck(&builder);
    builder.RegisterService(&service_);
    server_ = builder.BuildAndStart();
    EXPECT_NE(server_, nullptr);
    EXPECT_NE(port_, 0);
  }
  ~TestServer() {
    if (server_ != nullptr) server_->Shutdown(std::chrono::system_clock::now());
  }

  std::string address(const std::string& host = "127.0.0.1") const {
    return absl::StrCat(host, ":", port_);
  }
  CountingService& service() { return service_; }

 private:
  CountingService service_;
  int port_ = 0;
  std::unique_ptr<grpc::Server> server_;
};

std::unique_ptr<grpc::ClientContext> Context(const std::string& authorization = "") {
  auto context = std::make_unique<grpc::ClientContext>();
  context->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  if (!authorization.empty()) context->AddMetadata("authorization", authorization);
  return context;
}

grpc::Status Push(const std::shared_ptr<grpc::Channel>& channel,
                  const std::string& authorization = "") {
  PushResponse response;
  return ParameterServer::NewStub(channel)->Push(Context(authorization).get(), PushRequest(),
                                                 &response);
}

grpc::Status Stats(const std::shared_ptr<grpc::Channel>& channel) {
  StatsResponse response;
  grpc::Status status =
      ParameterServer::NewStub(channel)->Stats(Context().get(), StatsRequest(), &response);
  if (status.ok()) {
    EXPECT_EQ(response.shard(), 7u);
  }
  return status;
}

// grpc.health.v1.Health/Check without the health proto (see tests/ps/server_test.cc).
grpc::Status HealthCheck(const std::shared_ptr<grpc::Channel>& channel) {
  google::protobuf::Int32Value response;
  const grpc::internal::RpcMethod check("/grpc.health.v1.Health/Check",
                                        grpc::internal::RpcMethod::NORMAL_RPC);
  return grpc::internal::BlockingUnaryCall(channel.get(), check, Context().get(),
                                           google::protobuf::Empty(), &response);
}

std::shared_ptr<grpc::Channel> Plaintext(const std::string& address) {
  return grpc::CreateChannel(address, grpc::InsecureChannelCredentials());
}

// A TLS channel that trusts `ca` and presents `cert` (none if empty), with no token.
std::shared_ptr<grpc::Channel> Tls(const std::string& address, const fs::path& ca,
                                   const fs::path& cert = {}, const fs::path& key = {}) {
  grpc::SslCredentialsOptions options;
  options.pem_root_certs = ReadFile(ca);
  if (!cert.empty()) {
    options.pem_cert_chain = ReadFile(cert);
    options.pem_private_key = ReadFile(key);
  }
  return grpc::CreateChannel(address, grpc::SslCredentials(options));
}

void SetTokenFlag(const std::string& token) {
  absl::SetFlag(&FLAGS_auth_token_file, WriteFile("token", token).string());
}

void SetTlsFlags() {
  const Certs& certs = TestCerts();
  absl::SetFlag(&FLAGS_tls_cert, certs.server_cert.string());
  absl::SetFlag(&FLAGS_tls_key, certs.server_key.string());
  absl::SetFlag(&FLAGS_tls_ca, certs.ca_a.string());
}

TEST(SecurityTest, WithoutFlagsEverythingIsInsecure) {
  absl::FlagSaver saver;
  ASSERT_TRUE(InitSecurityFromFlags().ok());
  EXPECT_TRUE(SecurityFlagsForChildren().empty());
  TestServer server;
  EXPECT_TRUE(Stats(CreatePeerChannel(server.address(), grpc::ChannelArguments())).ok());
  EXPECT_TRUE(Push(Plaintext(server.address())).ok());
  EXPECT_TRUE(HealthCheck(Plaintext(server.address())).ok());
  EXPECT_EQ(server.service().pushes, 1);
}

TEST(SecurityTest, TokenIsRequiredOnEveryRpcAndCheckedBeforeTheHandler) {
  absl::FlagSaver saver;
  SetTokenFlag("  s3cret-Token_1\n");  // surrounding whitespace is not part of the token
  ASSERT_TRUE(InitSecurityFromFlags().ok());
  for (const bool check_first : {false, true}) {
    TestServer server(/*check=*/true, check_first);
    const auto peer = CreatePeerChannel(server.address(), grpc::ChannelArguments());
    EXPECT_TRUE(Stats(peer).ok());
    EXPECT_TRUE(Push(peer).ok());
    EXPECT_TRUE(HealthCheck(peer).ok());
    EXPECT_EQ(server.service().pushes, 1);
    // The check consumes the token: handlers never see the secret.
    EXPECT_FALSE(server.service().saw_token);

    const auto plain = Plaintext(server.address());
    ::testing::internal::CaptureStderr();
    EXPECT_EQ(Push(plain).error_code(), grpc::StatusCode::UNAUTHENTICATED);
    for (const char* wrong :
         {"Bearer s3cret-Token_", "Bearer s3cret-Token_12", "Bearer wrong", "s3cret-Token_1",
          "bearer s3cret-Token_1", "Bearer  s3cret-Token_1"}) {
      EXPECT_EQ(Push(plain, wrong).error_code(), grpc::StatusCode::UNAUTHENTICATED) << wrong;
    }
    EXPECT_EQ(Stats(plain).error_code(), grpc::StatusCode::UNAUTHENTICATED);
    EXPECT_EQ(HealthCheck(plain).error_code(), grpc::StatusCode::UNAUTHENTICATED);
    const std::string log = ::testing::internal::GetCapturedStderr();
    EXPECT_EQ(server.service().pushes, 1);
    EXPECT_THAT(log, AllOf(HasSubstr("UNAUTHENTICATED: rejected /psrec.ParameterServer/Push from "
                                     "a plaintext client"),
                           HasSubstr("no auth token"), HasSubstr("wrong auth token"),
                           HasSubstr("/psrec.ParameterServer/Stats"),
                           HasSubstr("/grpc.health.v1.Health/Check")));
    EXPECT_THAT(log, ::testing::Not(HasSubstr("s3cret")));
    // The right token works on a channel that is not ours too.
    EXPECT_TRUE(Push(plain, "Bearer s3cret-Token_1").ok());
    EXPECT_EQ(server.service().pushes, 2);
  }
}

TEST(SecurityTest, ServerWithoutAuthCheckTakesAnyToken) {
  absl::FlagSaver saver;
  SetTokenFlag("s3cret");
  ASSERT_TRUE(InitSecurityFromFlags().ok());
  TestServer server(/*check=*/false);
  EXPECT_TRUE(Push(Plaintext(server.address())).ok());
  EXPECT_TRUE(Push(CreatePeerChannel(server.address(), grpc::ChannelArguments())).ok());
}

TEST(SecurityTest, MutualTlsWithToken) {
  absl::FlagSaver saver;
  SetTlsFlags();
  SetTokenFlag("s3cret");
  ASSERT_TRUE(InitSecurityFromFlags().ok());
  const Certs& certs = TestCerts();
  TestServer server;
  for (const std::string host : {"127.0.0.1", "localhost"}) {
    EXPECT_TRUE(Push(CreatePeerChannel(server.address(host), grpc::ChannelArguments())).ok())
        << host;
  }
  EXPECT_EQ(server.service().pushes, 2);

  // Rejected by the TLS handshake, before any RPC: gRPC reports these as UNAVAILABLE.
  for (const auto& [name, channel] :
       std::vector<std::pair<std::string, std::shared_ptr<grpc::Channel>>>{
           {"plaintext", Plaintext(server.address())},
           {"no client certificate", Tls(server.address(), certs.ca_a)},
           {"certificate of another CA",
            Tls(server.address(), certs.ca_a, certs.rogue_cert, certs.rogue_key)},
           {"server not trusted",
            Tls(server.address(), certs.ca_b, certs.client_cert, certs.client_key)}}) {
    const grpc::Status status = Push(channel, "Bearer s3cret");
    EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE)
        << name << ": " << status.error_message();
  }
  EXPECT_EQ(server.service().pushes, 2);

  // A good certificate without the token: the check names the certificate.
  const auto no_token = Tls(server.address(), certs.ca_a, certs.client_cert, certs.client_key);
  ::testing::internal::CaptureStderr();
  EXPECT_EQ(Push(no_token).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(Push(no_token, "Bearer wrong").error_code(), grpc::StatusCode::UNAUTHENTICATED);
  const std::string log = ::testing::internal::GetCapturedStderr();
  EXPECT_THAT(log, AllOf(HasSubstr("rejected /psrec.ParameterServer/Push from the TLS client"),
                         HasSubstr("CN=psrec-client"), HasSubstr("127.0.0.1")));
  EXPECT_TRUE(Push(no_token, "Bearer s3cret").ok());
  EXPECT_EQ(server.service().pushes, 3);
}

TEST(SecurityTest, MutualTlsWithoutToken) {
  absl::FlagSaver saver;
  SetTlsFlags();
  ASSERT_TRUE(InitSecurityFromFlags().ok());
  const Certs& certs = TestCerts();
  TestServer server;
  EXPECT_TRUE(Push(CreatePeerChannel(server.address(), grpc::ChannelArguments())).ok());
  EXPECT_TRUE(Push(Tls(server.address(), certs.ca_a, certs.client_cert, certs.client_key)).ok());
  EXPECT_FALSE(Push(Tls(server.address(), certs.ca_a)).ok());
  EXPECT_FALSE(Push(Tls(server.address(), certs.ca_a, certs.rogue_cert, certs.rogue_key)).ok());
  EXPECT_EQ(server.service().pushes, 2);
}

TEST(SecurityTest, FlagsForChildrenAreTheOnesSet) {
  absl::FlagSaver saver;
  absl::SetFlag(&FLAGS_tls_ca, "/x/ca.pem");
  absl::SetFlag(&FLAGS_auth_token_file, "/x/token");
  EXPECT_EQ(SecurityFlagsForChildren(),
            (std::vector<std::string>{"--tls_ca=/x/ca.pem", "--auth_token_file=/x/token"}));
}

std::string InitError() {
  const absl::Status status = InitSecurityFromFlags();
  EXPECT_FALSE(status.ok());
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  return std::string(status.message());
}

TEST(SecurityTest, InitNamesTheFlagAndFileOfABadToken) {
  absl::FlagSaver saver;
  const std::string missing = (testing_util::TestRoot() / "no_such_token").string();
  absl::SetFlag(&FLAGS_auth_token_file, missing);
  EXPECT_THAT(InitError(), AllOf(HasSubstr("--auth_token_file=" + missing),
                                 HasSubstr("No such file or directory")));

  const std::string empty = WriteFile("empty_token", " \n\t\n").string();
  absl::SetFlag(&FLAGS_auth_token_file, empty);
  EXPECT_THAT(InitError(), HasSubstr("--auth_token_file=" + empty + " is empty"));

  const std::string spaced = WriteFile("spaced_token", "two words\n").string();
  absl::SetFlag(&FLAGS_auth_token_file, spaced);
  EXPECT_THAT(InitError(), AllOf(HasSubstr("--auth_token_file=" + spaced),
                                 HasSubstr("printable ASCII without spaces")));

  absl::SetFlag(&FLAGS_auth_token_file, testing_util::TestRoot().string());  // a directory
  EXPECT_THAT(InitError(),
              HasSubstr("--auth_token_file=" + testing_util::TestRoot().string() + ": cannot"));
}

TEST(SecurityTest, InitNamesTheFlagAndFileOfBadTls) {
  absl::FlagSaver saver;
  const Certs& certs = TestCerts();
  absl::SetFlag(&FLAGS_tls_cert, certs.client_cert.string());
  EXPECT_THAT(InitError(), AllOf(HasSubstr("--tls_cert=" + certs.client_cert.string() +
                                           " given without --tls_key and --tls_ca"),
                                 HasSubstr("together")));

  absl::SetFlag(&FLAGS_tls_ca, certs.ca_a.string());
  EXPECT_THAT(InitError(),
              AllOf(HasSubstr("--tls_cert=" + certs.client_cert.string()),
                    HasSubstr("--tls_ca=" + certs.ca_a.string()), HasSubstr("without --tls_key")));

  const std::string missing = (testing_util::TestRoot() / "no_such_key").string();
  absl::SetFlag(&FLAGS_tls_key, missing);
  EXPECT_THAT(InitError(),
              AllOf(HasSubstr("--tls_key=" + missing), HasSubstr("No such file or directory")));

  const std::string not_pem = WriteFile("not_pem", "hello\n").string();
  absl::SetFlag(&FLAGS_tls_key, certs.client_key.string());
  absl::SetFlag(&FLAGS_tls_ca, not_pem);
  EXPECT_THAT(InitError(), AllOf(HasSubstr("--tls_ca=" + not_pem), HasSubstr("not PEM")));

  // Only the token flag fine, the TLS ones still partial: TLS is reported first.
  SetTokenFlag("s3cret");
  absl::SetFlag(&FLAGS_tls_ca, "");
  EXPECT_THAT(InitError(), HasSubstr("without --tls_ca"));

  absl::SetFlag(&FLAGS_tls_ca, certs.ca_a.string());
  EXPECT_TRUE(InitSecurityFromFlags().ok());
}

}  // namespace
}  // namespace psrec
