#include "common/movielens_scan.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace psrec {
namespace {

constexpr int kMaxIntDigits = 18;  // 10^18 - 1 fits an int64 with room: no overflow check needed
constexpr int kMaxRatingDigits = 7;

inline bool IsDigit(char c) { return static_cast<unsigned char>(c - '0') < 10; }

// Reads 1 to kMaxIntDigits digits at *p; false otherwise. Looks at one digit more, to refuse a
// longer number, which fits the unsigned sum.
inline bool ScanDigits(const char** p, const char* end, int64_t* value) {
  const char* s = *p;
  const char* limit = end - s > kMaxIntDigits ? s + kMaxIntDigits + 1 : end;
  uint64_t v = 0;
  const char* q = s;
  while (q < limit && IsDigit(*q)) v = v * 10 + static_cast<uint64_t>(*q++ - '0');
  if (q == s || q - s > kMaxIntDigits) return false;
  *value = static_cast<int64_t>(v);
  *p = q;
  return true;
}

// The separator at *p, one byte or "::".
inline bool ScanSeparator(const char** p, const char* end, Layout layout) {
  const char* q = *p;
  switch (layout) {
    case Layout::kCsv:
      if (q >= end || *q != ',') return false;
      *p = q + 1;
      return true;
    case Layout::kUData:
      if (q >= end || *q != '\t') return false;
      *p = q + 1;
      return true;
    case Layout::kDat:
      if (end - q < 2 || q[0] != ':' || q[1] != ':') return false;
      *p = q + 2;
      return true;
  }
  return false;
}

// "4", "3.5", "4.50": the mantissa and 10^decimals are exact floats, so one division rounds
// correctly, as the general parser's fast path does.
inline bool ScanRating(const char** p, const char* end, float* rating) {
  constexpr float kPow10[] = {1e0f, 1e1f, 1e2f, 1e3f, 1e4f, 1e5f, 1e6f, 1e7f};
  const char* q = *p;
  uint32_t mantissa = 0;
  int digits = 0, decimals = 0;
  while (q < end && IsDigit(*q) && digits <= kMaxRatingDigits) {
    mantissa = mantissa * 10 + static_cast<uint32_t>(*q++ - '0');
    ++digits;
  }
  if (digits == 0) return false;
  if (q < end && *q == '.') {
    ++q;
    while (q < end && IsDigit(*q) && digits <= kMaxRatingDigits) {
      mantissa = mantissa * 10 + static_cast<uint32_t>(*q++ - '0');
      ++digits;
      ++decimals;
    }
    if (decimals == 0) return false;
  }
  if (digits > kMaxRatingDigits) return false;
  const float value = static_cast<float>(mantissa) / kPow10[decimals];
  if (!(value >= kMinRating && value <= kMaxRating)) return false;
  *rating = value;
  *p = q;
  return true;
}

}  // namespace

const char* ScanRatingLine(const char* p, const char* end, Layout layout, ScannedRating* out) {
  if (!ScanDigits(&p, end, &out->user_id) || !ScanSeparator(&p, end, layout) ||
      !ScanDigits(&p, end, &out->item_id) || !ScanSeparator(&p, end, layout) ||
      !ScanRating(&p, end, &out->rating) || !ScanSeparator(&p, end, layout)) {
    return nullptr;
  }
  const bool negative = p < end && *p == '-';
  if (negative) ++p;
  if (!ScanDigits(&p, end, &out->timestamp)) return nullptr;
  if (negative) out->timestamp = -out->timestamp;
  if (p == end) return p;
  if (*p == '\n') return p + 1;
  if (*p == '\r' && end - p >= 2 && p[1] == '\n') return p + 2;
  return nullptr;
}

void AdviseHugePages(void* data, size_t bytes) {
  constexpr size_t kHugePage = size_t{2} << 20;
  const size_t misaligned = reinterpret_cast<uintptr_t>(data) % kHugePage;
  const size_t skip = misaligned == 0 ? 0 : kHugePage - misaligned;
  if (bytes < skip + kHugePage) return;
  const size_t whole = (bytes - skip) / kHugePage * kHugePage;
  madvise(static_cast<char*>(data) + skip, whole, MADV_HUGEPAGE);  // a hint: errors are ignored
}

absl::StatusOr<FileText> FileText::Read(const std::string& path) {
  auto fail = [&path](const char* what, int error) {
    const std::string message = absl::StrCat(path, ": ", what, ": ", std::strerror(error));
    return error == ENOENT ? absl::NotFoundError(message) : absl::InvalidArgumentError(message);
  };
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return fail("cannot open", errno);
  struct stat st;
  // One byte more than fstat's size, so that the read that finds the end needs no more room; a
  // file that grew meanwhile doubles the buffer.
  size_t capacity = 1 + (fstat(fd, &st) == 0 && st.st_size > 0 ? size_t(st.st_size) : 0);
  FileText file;
  file.data_.reset(static_cast<char*>(std::malloc(capacity)));
  AdviseHugePages(file.data_.get(), capacity);
  while (file.data_ != nullptr) {
    if (file.size_ == capacity) {
      capacity *= 2;
      char* grown = static_cast<char*>(std::realloc(file.data_.get(), capacity));
      if (grown == nullptr) break;
      static_cast<void>(file.data_.release());  // realloc has taken it
      file.data_.reset(grown);
    }
    const ssize_t n = read(fd, file.data_.get() + file.size_, capacity - file.size_);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int error = errno;
      close(fd);
      if (n < 0) return fail("read failed", error);
      return file;
    }
    file.size_ += static_cast<size_t>(n);
  }
  close(fd);
  return fail("read failed", ENOMEM);
}

void IdIndex::Grow(int64_t id) {
  const size_t want = std::max<size_t>(static_cast<size_t>(id) + 1, 2 * dense_.size());
  dense_.resize(std::min<size_t>(want, static_cast<size_t>(kDenseLimit)), kAbsent);
}

}  // namespace psrec
