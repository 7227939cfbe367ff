#include "synth/file_sink.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"

namespace psrec {

absl::StatusOr<std::unique_ptr<FileSink>> FileSink::Open(const std::string& path) {
  const std::string tmp = path + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    return absl::UnavailableError(absl::StrCat("cannot create ", tmp, ": ", std::strerror(errno)));
  }
  return std::unique_ptr<FileSink>(new FileSink(path, fd));
}

FileSink::FileSink(std::string path, int fd)
    : path_(std::move(path)), tmp_(path_ + ".tmp"), fd_(fd), buffer_(kBufferBytes) {}

FileSink::~FileSink() {
  if (fd_ >= 0) ::close(fd_);
  if (!finished_) std::remove(tmp_.c_str());
}

void FileSink::Append(absl::string_view bytes) {
  while (!bytes.empty()) {
    const size_t n = std::min(bytes.size(), kBufferBytes);
    std::memcpy(Reserve(n), bytes.data(), n);
    Advance(n);
    bytes.remove_prefix(n);
  }
}

void FileSink::Fail(const char* what, int error) {
  if (status_.ok()) {
    status_ = absl::UnavailableError(absl::StrCat("cannot ", what, " ", tmp_,
                                                  what[0] == 'r' ? " to " + path_ : "", ": ",
                                                  std::strerror(error)));
  }
}

void FileSink::Flush() {
  size_t done = 0;
  while (status_.ok() && done < used_) {
    const ssize_t n = ::write(fd_, buffer_.data() + done, used_ - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      Fail("write", n < 0 ? errno : ENOSPC);
      break;
    }
    done += static_cast<size_t>(n);
  }
  written_ += used_;
  used_ = 0;
}

absl::Status FileSink::Finish() {
  Flush();
  if (status_.ok() && ::fsync(fd_) != 0) Fail("write", errno);
  const int fd = std::exchange(fd_, -1);
  if (::close(fd) != 0) Fail("write", errno);
  if (status_.ok() && std::rename(tmp_.c_str(), path_.c_str()) != 0) Fail("rename", errno);
  finished_ = status_.ok();
  return status_;
}

}  // namespace psrec
