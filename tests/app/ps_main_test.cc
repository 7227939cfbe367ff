// `psrec ps` (app/ps_main.cc) as a real child process: it serves health and config until a
// Shutdown RPC, exits 143 on SIGTERM, and refuses bad flags.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "google/protobuf/empty.pb.h"
#include "google/protobuf/wrappers.pb.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/impl/client_unary_call.h"
#include "grpcpp/impl/rpc_method.h"
#include "gtest/gtest.h"
#include "proto/ps.grpc.pb.h"
#include "tests/test_util.h"

namespace psrec {
namespace {

// `psrec ps` as a child process on a loopback port it picks itself.
class PsProcess {
 public:
  explicit PsProcess(const std::vector<std::string>& flags) {
    static int count = 0;
    port_file_ = absl::StrCat(testing::TempDir(), "/ps_port_", ::getpid(), "_", count++);
    std::remove(port_file_.c_str());
    std::vector<std::string> args = {PSREC_BINARY, "ps", "--host=127.0.0.1", "--port=0",
                                     "--port_file=" + port_file_};
    args.insert(args.end(), flags.begin(), flags.end());
    std::vector<char*> argv;
    argv.reserve(args.size() + 1);
    for (std::string& arg : args) argv.push_back(arg.data());
    argv.push_back(nullptr);
    pid_ = ::fork();
    if (pid_ == 0) {
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
  }
  ~PsProcess() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    std::remove(port_file_.c_str());
  }

  pid_t pid() const { return pid_; }

  // The port from --port_file, or 0 after 10 s.
  int WaitForPort() const {
    for (int i = 0; i < 1000; ++i) {
      std::ifstream in(port_file_);
      int port = 0;
      if (in >> port) return port;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return 0;
  }

  // The exit status, or -1 if the process has not exited within 10 s.
  int Wait() {
    for (int i = 0; i < 1000; ++i) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return -1;
  }

 private:
  std::string port_file_;
  pid_t pid_ = -1;
};

TEST(PsProcessTest, ServesHealthAndConfigUntilShutdownRpc) {
  PsProcess ps({"--shard=1", "--num_shards=2", "--workers=3", "--consistency=async"});
  const int port = ps.WaitForPort();
  ASSERT_GT(port, 0);
  auto channel =
      grpc::CreateChannel(absl::StrCat("127.0.0.1:", port), grpc::InsecureChannelCredentials());
  auto stub = ParameterServer::NewStub(channel);
  {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    GetConfigResponse response;
    ASSERT_TRUE(stub->GetConfig(&context, GetConfigRequest(), &response).ok());
    EXPECT_EQ(response.shard(), 1u);
    EXPECT_EQ(response.config().num_shards(), 2u);
    EXPECT_EQ(response.config().num_workers(), 3u);
    EXPECT_EQ(response.config().consistency(), ASYNC);
    EXPECT_GT(response.config().tables_size(), 0);
  }
  {
    // grpc.health.v1: an empty HealthCheckRequest in, and the response's field 1 (status, a varint)
    // read through a message of the same shape, so the test needs no health proto.
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    google::protobuf::Int32Value status;
    const grpc::internal::RpcMethod check("/grpc.health.v1.Health/Check",
                                          grpc::internal::RpcMethod::NORMAL_RPC);
    ASSERT_TRUE((grpc::internal::BlockingUnaryCall(channel.get(), check, &context,
                                                   google::protobuf::Empty(), &status))
                    .ok());
    EXPECT_EQ(status.value(), 1);  // SERVING
  }
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  ShutdownResponse response;
  EXPECT_TRUE(stub->Shutdown(&context, ShutdownRequest(), &response).ok());
  EXPECT_EQ(ps.Wait(), 0);
}

// 143 (128 + SIGTERM), so that Kubernetes and the local launcher restart it and the coordinator
// rolls back; SIGINT, a user's Ctrl-C, is a clean stop.
TEST(PsProcessTest, Exits143OnSigtermAndZeroOnSigint) {
  PsProcess terminated({});
  ASSERT_GT(terminated.WaitForPort(), 0);
  ::kill(terminated.pid(), SIGTERM);
  EXPECT_EQ(terminated.Wait(), 143);
  PsProcess interrupted({});
  ASSERT_GT(interrupted.WaitForPort(), 0);
  ::kill(interrupted.pid(), SIGINT);
  EXPECT_EQ(interrupted.Wait(), 0);
}

TEST(PsProcessTest, RejectsAShardOutOfRange) {
  PsProcess ps({"--shard=2", "--num_shards=2"});
  EXPECT_EQ(ps.Wait(), 2);
}

TEST(PsProcessTest, RejectsNoShards) {
  const std::filesystem::path dir = testing_util::FreshDir("ps_no_shards");
  const testing_util::Result r = testing_util::RunPsrec(
      {"ps", "--num_shards=0", "--data=" + testing_util::SyntheticData().string()}, dir);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, testing::HasSubstr("psrec ps: --num_shards=0 must be at least 1"));
}

}  // namespace
}  // namespace psrec
