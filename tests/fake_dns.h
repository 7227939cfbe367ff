// A DNS server on 127.0.0.1 for the tests of peers that move: a name it is given resolves to one
// IPv4 address, and any other name is "not found" (NXDOMAIN), as a Kubernetes pod's name is while
// the pod is being made again. gRPC's c-ares resolver asks it for a target
// "dns://127.0.0.1:<its port>/<name>:<port>" (Target). UDP only; every answer has TTL 0.
// Header-only, like tests/test_util.h.
#ifndef PSREC_TESTS_FAKE_DNS_H_
#define PSREC_TESTS_FAKE_DNS_H_

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace psrec {
namespace testing_util {

class FakeDns {
 public:
  FakeDns() {
    fd_ = ::socket(AF_INET, SOCK_DGRAM, 0);
    sockaddr_in addr = {};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(addr);
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&addr), len) == 0 &&
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
      port_ = ntohs(addr.sin_port);
    }
    thread_ = std::thread([this] { Serve(); });
  }
  ~FakeDns() {
    stop_ = true;
    thread_.join();
    ::close(fd_);
  }
  FakeDns(const FakeDns&) = delete;
  FakeDns& operator=(const FakeDns&) = delete;

  // 0 when the socket could not be bound.
  int port() const { return port_; }

  // The gRPC target of `name`:`port` resolved by this server.
  std::string Target(const std::string& name, int port) const {
    return absl::StrCat("dns://127.0.0.1:", port_, "/", name, ":", port);
  }

  // `name` resolves to `ipv4` from now on; with "", it is not found.
  void Set(const std::string& name, const std::string& ipv4) {
    std::lock_guard<std::mutex> lock(mu_);
    if (ipv4.empty()) {
      names_.erase(name);
    } else {
      names_[name] = ipv4;
    }
  }

  // How many A queries for `name` were answered "not found" so far.
  int NotFound(const std::string& name) {
    std::lock_guard<std::mutex> lock(mu_);
    return not_found_[name];
  }

  // Waits up to a minute for the `n`th "not found" answer to an A query for `name`.
  bool WaitForNotFound(const std::string& name, int n) {
    const absl::Time give_up = absl::Now() + absl::Minutes(1);
    while (NotFound(name) < n) {
      if (absl::Now() > give_up) return false;
      absl::SleepFor(absl::Milliseconds(10));
    }
    return true;
  }

 private:
  static constexpr uint16_t kTypeA = 1;

  void Serve() {
    while (!stop_) {
      pollfd p = {fd_, POLLIN, 0};
      if (::poll(&p, 1, 20) <= 0) continue;
      uint8_t query[512];
      sockaddr_in from = {};
      socklen_t len = sizeof(from);
      const ssize_t n =
          ::recvfrom(fd_, query, sizeof(query), 0, reinterpret_cast<sockaddr*>(&from), &len);
      std::string answer;
      if (n > 0 && Answer(query, static_cast<size_t>(n), &answer)) {
        ::sendto(fd_, answer.data(), answer.size(), 0, reinterpret_cast<sockaddr*>(&from), len);
      }
    }
  }

  // The answer to one query with one question; false for anything else.
  bool Answer(const uint8_t* q, size_t n, std::string* out) {
    if (n < 12 || q[4] != 0 || q[5] != 1) return false;
    std::string name;
    size_t at = 12;
    while (at < n && q[at] != 0) {
      const size_t label = q[at];
      if (label > 63 || at + 1 + label > n) return false;
      if (!name.empty()) name += '.';
      name.append(reinterpret_cast<const char*>(q + at + 1), label);
      at += 1 + label;
    }
    if (at + 5 > n) return false;
    const size_t question_end = at + 5;  // the root label, type and class
    const uint16_t type = static_cast<uint16_t>(q[at + 1] << 8 | q[at + 2]);
    std::string ipv4;
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = names_.find(name);
      if (it != names_.end()) {
        ipv4 = it->second;
      } else if (type == kTypeA) {
        ++not_found_[name];
      }
    }
    in_addr addr = {};
    const bool found = !ipv4.empty() && ::inet_pton(AF_INET, ipv4.c_str(), &addr) == 1;
    const bool with_answer = found && type == kTypeA;
    // Header: the query's id, a response with the query's RD bit, RA, and NXDOMAIN (3) for a name
    // it does not know; one question, and the answer when there is one.
    const uint8_t header[12] = {q[0],
                                q[1],
                                static_cast<uint8_t>(0x84 | (q[2] & 0x01)),
                                static_cast<uint8_t>(0x80 | (ipv4.empty() ? 3 : 0)),
                                0,
                                1,
                                0,
                                static_cast<uint8_t>(with_answer ? 1 : 0),
                                0,
                                0,
                                0,
                                0};
    out->assign(reinterpret_cast<const char*>(header), sizeof(header));
    out->append(reinterpret_cast<const char*>(q + 12), question_end - 12);
    if (with_answer) {
      // A pointer to the question's name, type A, class IN, TTL 0, 4 bytes of address.
      const uint8_t record[12] = {0xc0, 12, 0, kTypeA, 0, 1, 0, 0, 0, 0, 0, 4};
      out->append(reinterpret_cast<const char*>(record), sizeof(record));
      out->append(reinterpret_cast<const char*>(&addr.s_addr), 4);
    }
    return true;
  }

  int fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::mutex mu_;
  std::map<std::string, std::string> names_;  // guarded by mu_
  std::map<std::string, int> not_found_;      // guarded by mu_
};

}  // namespace testing_util
}  // namespace psrec

#endif  // PSREC_TESTS_FAKE_DNS_H_
