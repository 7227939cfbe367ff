#include "common/files.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace psrec {

absl::Status WriteFileAtomically(const std::string& path, absl::string_view contents) {
  const std::string tmp = path + ".tmp";
  auto fail = [&](const char* what, int error) {
    std::remove(tmp.c_str());
    return absl::UnavailableError(absl::StrCat("cannot ", what, " ",
                                               what[0] == 'r' ? tmp + " to " + path : tmp, ": ",
                                               std::strerror(error)));
  };
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return fail("create", errno);
  size_t done = 0;
  while (done < contents.size()) {
    const ssize_t n = ::write(fd, contents.data() + done, contents.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int error = errno;
      ::close(fd);
      return fail("write", error);
    }
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0) {
    const int error = errno;
    ::close(fd);
    return fail("write", error);
  }
  if (::close(fd) != 0) return fail("write", errno);
  if (std::rename(tmp.c_str(), path.c_str()) != 0) return fail("rename", errno);
  return absl::OkStatus();
}

}  // namespace psrec
