// Clients for the operator endpoints of a psrec process (common/health.h, common/metrics.h): a gRPC
// health check by service name, a plain HTTP GET of /metrics, and reading one sample from its text.
// Header-only, like tests/test_util.h.
#ifndef PSREC_TESTS_OPS_TEST_UTIL_H_
#define PSREC_TESTS_OPS_TEST_UTIL_H_

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <sstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "google/protobuf/wrappers.pb.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/impl/client_unary_call.h"
#include "grpcpp/impl/codegen/proto_utils.h"
#include "grpcpp/impl/rpc_method.h"

namespace psrec {
namespace testing_util {

// Binds 127.0.0.1:`port` (0: one the kernel picks) and lets it go at once: the port bound, or 0
// when it could not be bound.
inline int BindAndRelease(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr = {};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  socklen_t len = sizeof(addr);
  int bound = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    bound = ntohs(addr.sin_port);
  }
  ::close(fd);
  return bound;
}

// A port nobody listens on right now, for a flag that has no "pick one" value (--health_port and
// --metrics_port take 0 as "off"). The kernel hands out ephemeral ports in turn, so another
// process taking it before the child binds it is unlikely.
inline int UnusedPort() { return BindAndRelease(0); }

// The first of `n` consecutive ports nobody listens on right now (as UnusedPort), for
// `psrec train --cluster_metrics_port`; 0 if none was found.
inline int UnusedPorts(int n) {
  for (int attempt = 0; attempt < 100; ++attempt) {
    const int first = UnusedPort();
    bool free = first > 0 && first + n - 1 <= 65535;
    for (int port = first + 1; free && port < first + n; ++port) {
      free = BindAndRelease(port) == port;
    }
    if (free) return first;
  }
  return 0;
}

// What a grpc.health.v1.Health/Check answered.
struct HealthAnswer {
  grpc::StatusCode code = grpc::StatusCode::UNKNOWN;
  int status = -1;  // 1 SERVING, 2 NOT_SERVING (HealthCheckResponse.ServingStatus)
};

// Checks `service` on 127.0.0.1:`port`, plaintext and without a token. The request and response
// are read through messages of the same shape as the health proto's (field 1: the service name;
// field 1: the status), so no health proto is needed.
inline HealthAnswer CheckHealth(int port, const std::string& service) {
  auto channel =
      grpc::CreateChannel(absl::StrCat("127.0.0.1:", port), grpc::InsecureChannelCredentials());
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  google::protobuf::StringValue request;
  request.set_value(service);
  google::protobuf::Int32Value response;
  const grpc::internal::RpcMethod check("/grpc.health.v1.Health/Check",
                                        grpc::internal::RpcMethod::NORMAL_RPC);
  const grpc::Status s =
      grpc::internal::BlockingUnaryCall(channel.get(), check, &context, request, &response);
  return HealthAnswer{s.error_code(), s.ok() ? response.value() : -1};
}

// The body of GET http://127.0.0.1:`port`/metrics, or "" when nothing answers.
inline std::string Scrape(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr = {};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  std::string reply;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
    const std::string request = "GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
    if (::write(fd, request.data(), request.size()) == static_cast<ssize_t>(request.size())) {
      char buf[4096];
      for (ssize_t n; (n = ::read(fd, buf, sizeof(buf))) > 0;) reply.append(buf, n);
    }
  }
  ::close(fd);
  const size_t body = reply.find("\r\n\r\n");
  return body == std::string::npos ? "" : reply.substr(body + 4);
}

// The value of the sample whose name and labels are exactly `series` (`psrec_ps_rows{table="x"}`),
// or NAN when the text has none.
inline double Sample(const std::string& text, const std::string& series) {
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.size() > series.size() && line.compare(0, series.size(), series) == 0 &&
        line[series.size()] == ' ') {
      return std::stod(line.substr(series.size() + 1));
    }
  }
  return NAN;
}

}  // namespace testing_util
}  // namespace psrec

#endif  // PSREC_TESTS_OPS_TEST_UTIL_H_
