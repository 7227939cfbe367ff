// Files as every role uses them: reading one whole, writing one so that a reader sees the old
// contents or the new (never half of either), and joining paths.
#ifndef PSREC_COMMON_FILES_H_
#define PSREC_COMMON_FILES_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace psrec {

// Writes `contents` to PATH.tmp, flushes it to disk (fsync), and renames it over `path`. On failure
// `path` is untouched, PATH.tmp is removed, and the error names the file and the system's reason.
absl::Status WriteFileAtomically(const std::string& path, absl::string_view contents);

// The whole of the regular file `path`. Errors start with the path: NOT_FOUND when it cannot be
// opened ("PATH: cannot open: REASON") or is not a regular file ("PATH: cannot read: not a regular
// file"), DATA_LOSS when it holds more than `max_bytes` or a read fails ("PATH: cannot read:
// REASON").
absl::StatusOr<std::string> ReadFileToString(const std::string& path,
                                             uint64_t max_bytes = UINT64_MAX);

// "dir/file", with one slash between them however `dir` ends; `file` alone when `dir` is empty.
std::string JoinPath(const std::string& dir, absl::string_view file);

// fsyncs directory `dir` ("" is the current one), so that a rename into it survives a crash
// (WriteFileAtomically fsyncs the file but not its directory). UNAVAILABLE with the system's
// reason.
absl::Status FsyncDir(const std::string& dir);

// Creates `dir` and its parents if needed; a new directory's own entry is made durable in its
// parent. UNAVAILABLE naming the directory.
absl::Status MakeDurableDir(const std::string& dir);

}  // namespace psrec

#endif  // PSREC_COMMON_FILES_H_
