// The MovieLens reader's fast paths (common/movielens.cc): the file read in one piece, a rating
// line in its common form parsed in one pass, and original ids turned into dense indices without
// hashing the usual ones. Internal to the reader; exposed for its tests. Nothing here allocates per
// rating.
#ifndef PSREC_COMMON_MOVIELENS_SCAN_H_
#define PSREC_COMMON_MOVIELENS_SCAN_H_

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/movielens.h"

namespace psrec {

// Parses the line that starts at `p` (the text ends at `end`) when it has the common form
// "ID SEP ID SEP RATING SEP TIMESTAMP" and ends in '\n', "\r\n" or the end of the text: ids of 1 to
// 18 digits, a timestamp of 1 to 18 digits after an optional '-', and a rating in [0.5, 5] of 1 to
// 7 digits with an optional '.' between digits. Fills `out` and returns where the next line starts.
// Returns nullptr for anything else, valid or not ("5e0", ".5", a blank line, a bad field): the
// caller then takes the general parser, which accepts it too or names the error. The rating is
// the same float the general parser gives.
const char* ScanRatingLine(const char* p, const char* end, Layout layout, ScannedRating* out);

// Asks the kernel to back [data, data + bytes) with huge pages where it offers them
// (transparent huge pages in "madvise" mode): filling a large buffer then takes one page fault per
// 2 MiB instead of one per 4 KiB. A hint only; the parts of the range outside whole pages are left
// alone.
void AdviseHugePages(void* data, size_t bytes);

// The whole of a file, read into one buffer backed by huge pages where offered, without the copy
// through a small buffer a stream makes.
class FileText {
 public:
  // The contents of `path`. NotFound when it does not exist; InvalidArgument naming the file and
  // the system's reason for any other failure.
  static absl::StatusOr<FileText> Read(const std::string& path);
  absl::string_view text() const { return absl::string_view(data_.get(), size_); }

 private:
  struct Free {
    void operator()(char* p) const { std::free(p); }
  };
  std::unique_ptr<char, Free> data_;
  size_t size_ = 0;
};

// Original id -> dense index, in order of first appearance. Ids below 2^22 (every MovieLens
// release's) are looked up in an array; larger ones in a hash map. Not thread-safe.
class IdIndex {
 public:
  // The index of `id`, appending `id` to `ids` when it is new.
  uint32_t Get(int64_t id, std::vector<int64_t>* ids) {
    if (id >= 0 && id < kDenseLimit) {
      if (static_cast<size_t>(id) >= dense_.size()) Grow(id);
      uint32_t& slot = dense_[static_cast<size_t>(id)];
      if (slot == kAbsent) {
        slot = static_cast<uint32_t>(ids->size());
        ids->push_back(id);
      }
      return slot;
    }
    auto [it, inserted] = sparse_.try_emplace(id, static_cast<uint32_t>(ids->size()));
    if (inserted) ids->push_back(id);
    return it->second;
  }

 private:
  static constexpr int64_t kDenseLimit = int64_t{1} << 22;
  static constexpr uint32_t kAbsent = 0xffffffffu;
  void Grow(int64_t id);

  std::vector<uint32_t> dense_;
  absl::flat_hash_map<int64_t, uint32_t> sparse_;
};

}  // namespace psrec

#endif  // PSREC_COMMON_MOVIELENS_SCAN_H_
