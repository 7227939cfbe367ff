#include "common/movielens_scan.h"

#include <algorithm>

namespace psrec {
namespace {

constexpr int kMaxIntDigits = 18;  // 10^18 - 1 fits an int64 with room: no overflow check needed
constexpr int kMaxRatingDigits = 7;

inline bool IsDigit(char c) { return static_cast<unsigned char>(c - '0') < 10; }

// Reads 1 to kMaxIntDigits digits at *p; false otherwise.
inline bool ScanDigits(const char** p, const char* end, int64_t* value) {
  const char* s = *p;
  const char* limit = std::min(end, s + kMaxIntDigits + 1);
  int64_t v = 0;
  const char* q = s;
  while (q < limit && IsDigit(*q)) v = v * 10 + (*q++ - '0');
  if (q == s || q - s > kMaxIntDigits) return false;
  *value = v;
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

void IdIndex::Grow(int64_t id) {
  const size_t want = std::max<size_t>(static_cast<size_t>(id) + 1, 2 * dense_.size());
  dense_.resize(std::min<size_t>(want, static_cast<size_t>(kDenseLimit)), kAbsent);
}

}  // namespace psrec
