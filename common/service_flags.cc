#include "common/service_flags.h"

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "common/files.h"

ABSL_FLAG(std::string, host, "0.0.0.0", "Address to listen on (servers only).");
ABSL_FLAG(int32_t, port, 0,
          "Port to listen on (servers only); 0 picks a free one, reported through --port_file.");
ABSL_FLAG(std::string, port_file, "",
          "If set, write the bound port to this file once listening (servers only).");

namespace psrec {

const char* ServiceFlagsFile() { return __FILE__; }

std::string HostFlag() { return absl::GetFlag(FLAGS_host); }
int PortFlag() { return absl::GetFlag(FLAGS_port); }
std::string PortFileFlag() { return absl::GetFlag(FLAGS_port_file); }

std::string ListenAddress(const std::string& host, int port) {
  const bool ipv6 = host.find(':') != std::string::npos && host.front() != '[';
  return ipv6 ? absl::StrCat("[", host, "]:", port) : absl::StrCat(host, ":", port);
}

absl::Status WritePortFileIfRequested(int port) {
  const std::string path = PortFileFlag();
  if (path.empty()) return absl::OkStatus();
  return WriteFileAtomically(path, absl::StrCat(port, "\n"));
}

}  // namespace psrec
