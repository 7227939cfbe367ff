// A large file written front to back through a buffer, without holding it in memory: the bytes go
// to PATH.tmp, and Finish flushes them to disk and renames PATH.tmp to PATH, so a reader never
// finds half a file under PATH. (common/files.h writes a small file that is already in memory.)
#ifndef PSREC_SYNTH_FILE_SINK_H_
#define PSREC_SYNTH_FILE_SINK_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace psrec {

// Not thread-safe. Write errors are kept, not thrown: the first one comes back from Finish, and
// after it further bytes are dropped.
class FileSink {
 public:
  static constexpr size_t kBufferBytes = size_t{1} << 20;

  // Creates (or truncates) PATH.tmp. The error names it and the system's reason.
  static absl::StatusOr<std::unique_ptr<FileSink>> Open(const std::string& path);
  FileSink(const FileSink&) = delete;
  FileSink& operator=(const FileSink&) = delete;
  // Removes PATH.tmp unless Finish succeeded.
  ~FileSink();

  // Room for `n` <= kBufferBytes bytes at the pointer returned; Advance(k), k <= n, keeps the
  // first k of them. For formatting in place.
  char* Reserve(size_t n) {
    if (buffer_.size() - used_ < n) Flush();
    return buffer_.data() + used_;
  }
  void Advance(size_t n) { used_ += n; }
  void Append(absl::string_view bytes);

  // Writes what is buffered, fsyncs, closes and renames PATH.tmp to PATH. On any error so far,
  // PATH.tmp is removed, PATH is untouched and the error names the file.
  absl::Status Finish();

  // Bytes given so far.
  uint64_t bytes() const { return written_ + used_; }

 private:
  FileSink(std::string path, int fd);
  void Flush();
  void Fail(const char* what, int error);

  const std::string path_, tmp_;
  int fd_;
  std::vector<char> buffer_;
  size_t used_ = 0;
  uint64_t written_ = 0;
  bool finished_ = false;
  absl::Status status_;
};

}  // namespace psrec

#endif  // PSREC_SYNTH_FILE_SINK_H_
