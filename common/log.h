// Logging for every role: one line per message on stderr, written whole so that the lines of
// concurrent threads and child processes do not interleave. absl 20220623 has no absl/log, so this
// is ours.
//
//   PSREC_LOG(INFO) << "epoch " << epoch << " done";
//
// Thread-safe. FATAL is for broken invariants only: it aborts after writing.
#ifndef PSREC_COMMON_LOG_H_
#define PSREC_COMMON_LOG_H_

#include <sstream>
#include <string>

namespace psrec {

enum class LogSeverity { kInfo, kWarning, kError, kFatal };

// Sets the text put at the start of every line, such as "ps0" or "worker1". Call once, before
// threads start.
void SetLogRole(const std::string& role);

namespace log_internal {

class LogMessage {
 public:
  LogMessage(LogSeverity severity, const char* file, int line);
  LogMessage(const LogMessage&) = delete;
  LogMessage& operator=(const LogMessage&) = delete;
  ~LogMessage();
  std::ostream& stream() { return stream_; }

 private:
  LogSeverity severity_;
  std::ostringstream stream_;
};

// Makes a stream expression void, so that PSREC_CHECK is one expression with two void arms (glog's
// way): `if (a) PSREC_CHECK(b); else f();` then means what it says.
struct Voidify {
  void operator&(std::ostream&) {}
};

}  // namespace log_internal
}  // namespace psrec

#define PSREC_LOG_SEVERITY_INFO ::psrec::LogSeverity::kInfo
#define PSREC_LOG_SEVERITY_WARNING ::psrec::LogSeverity::kWarning
#define PSREC_LOG_SEVERITY_ERROR ::psrec::LogSeverity::kError
#define PSREC_LOG_SEVERITY_FATAL ::psrec::LogSeverity::kFatal
#define PSREC_LOG(severity) \
  ::psrec::log_internal::LogMessage(PSREC_LOG_SEVERITY_##severity, __FILE__, __LINE__).stream()

// Aborts with a message when an invariant is broken. Never for bad input: that is a Status.
#define PSREC_CHECK(cond) \
  (cond) ? (void)0        \
         : ::psrec::log_internal::Voidify() & PSREC_LOG(FATAL) << "check failed: " #cond " "

#endif  // PSREC_COMMON_LOG_H_
