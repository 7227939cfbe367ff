#include "common/stop_signal.h"

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace psrec {
namespace {

std::atomic<int> g_write_fd{-1};    // the installed instance's pipe, for the handler
std::atomic<int> g_last_signal{0};  // what the handler saw last

void OnSignal(int signo) {
  const int saved_errno = errno;
  if (signo != 0) g_last_signal.store(signo);
  const int fd = g_write_fd.load();
  const char byte = static_cast<char>(signo);
  if (fd >= 0 && ::write(fd, &byte, 1) < 0) {
    // The pipe is full, so a wake-up is already pending.
  }
  errno = saved_errno;
}

}  // namespace

StopSignal::~StopSignal() {
  if (installed_) {
    g_write_fd.store(-1);
    sigaction(SIGTERM, &old_term_, nullptr);
    sigaction(SIGINT, &old_int_, nullptr);
    g_last_signal.store(0);
  }
  for (int fd : fds_) {
    if (fd >= 0) ::close(fd);
  }
}

absl::Status StopSignal::Install() {
  if (::pipe2(fds_, O_CLOEXEC | O_NONBLOCK) != 0) {
    return absl::InternalError(absl::StrCat("pipe: ", std::strerror(errno)));
  }
  g_write_fd.store(fds_[1]);
  struct sigaction action = {};
  action.sa_handler = &OnSignal;
  sigemptyset(&action.sa_mask);
  sigaction(SIGTERM, &action, &old_term_);
  sigaction(SIGINT, &action, &old_int_);
  installed_ = true;
  return absl::OkStatus();
}

void StopSignal::Notify() {
  const char byte = 0;
  if (fds_[1] >= 0 && ::write(fds_[1], &byte, 1) < 0) {
    // Full: a wake-up is already pending.
  }
}

bool StopSignal::Wait(absl::Duration timeout) {
  if (woken_) return true;
  const int ms = timeout == absl::InfiniteDuration()
                     ? -1
                     : static_cast<int>(absl::ToInt64Milliseconds(timeout));
  pollfd p = {fds_[0], POLLIN, 0};
  int ready;
  while ((ready = ::poll(&p, 1, ms)) < 0 && errno == EINTR) {
  }
  if (ready > 0) Drain();
  return woken_;
}

void StopSignal::Drain() {
  char bytes[64];
  while (::read(fds_[0], bytes, sizeof(bytes)) > 0) woken_ = true;
}

int StopSignal::signal() const { return g_last_signal.load(); }

}  // namespace psrec
