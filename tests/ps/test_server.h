// A ParameterServerImpl in a real grpc::Server on a loopback port, with a stub and streams to it,
// for the tests of a shard's RPCs. Header-only: tests/CMakeLists.txt builds each *_test.cc alone.
#ifndef PSREC_TESTS_PS_TEST_SERVER_H_
#define PSREC_TESTS_PS_TEST_SERVER_H_

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "proto/ps.grpc.pb.h"
#include "ps/server.h"

namespace psrec {
namespace server_testing {

class TestServer {
 public:
  using Stream = grpc::ClientReaderWriter<StreamRequest, StreamResponse>;

  explicit TestServer(const JobConfig& config, uint32_t shard = 0,
                      const std::string& checkpoint_dir = "") {
    auto service = ParameterServerImpl::Create(config, shard, checkpoint_dir);
    EXPECT_TRUE(service.ok()) << service.status();
    service_ = std::move(service).value();
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    builder.RegisterService(service_.get());
    server_ = builder.BuildAndStart();
    EXPECT_NE(port, 0);
    stub_ = ParameterServer::NewStub(
        grpc::CreateChannel(absl::StrCat("127.0.0.1:", port), grpc::InsecureChannelCredentials()));
  }
  ~TestServer() {
    service_->BeginShutdown();  // ends the open streams, which Shutdown waits for
    server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
    server_->Wait();
  }

  // A new stream; its context is kept with the server, so the stream must go first.
  std::unique_ptr<Stream> Open() {
    contexts_.push_back(std::make_unique<grpc::ClientContext>());
    contexts_.back()->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
    return stub_->Stream(contexts_.back().get());
  }

  ParameterServer::Stub& stub() { return *stub_; }
  ParameterServerImpl& service() { return *service_; }

 private:
  std::unique_ptr<ParameterServerImpl> service_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<ParameterServer::Stub> stub_;
  std::vector<std::unique_ptr<grpc::ClientContext>> contexts_;
};

}  // namespace server_testing
}  // namespace psrec

#endif  // PSREC_TESTS_PS_TEST_SERVER_H_
