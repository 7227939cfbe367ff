#include "common/movielens.h"

#include <sys/stat.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>
#include <limits>
#include <system_error>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/files.h"
#include "common/movielens_scan.h"

namespace psrec {
namespace {

constexpr int kFields = 4;
constexpr absl::string_view kCsvHeader = "userId,movieId,rating,timestamp";
constexpr absl::string_view kFieldNames[kFields] = {"userId", "movieId", "rating", "timestamp"};
constexpr Layout kLayouts[] = {Layout::kCsv, Layout::kDat, Layout::kUData};

absl::string_view Separator(Layout layout) {
  switch (layout) {
    case Layout::kCsv:
      return ",";
    case Layout::kDat:
      return "::";
    case Layout::kUData:
      return "\t";
  }
  return ",";
}

// Field text for an error message: escaped, and cut short so a garbage line cannot flood a log.
std::string Quote(absl::string_view field) {
  constexpr size_t kMaxShown = 40;
  std::string shown = absl::CHexEscape(field.substr(0, kMaxShown));
  return absl::StrCat("'", shown, field.size() > kMaxShown ? "...'" : "'");
}

// Parses a whole field as an int64; false on an empty field, a sign other than '-', trailing bytes
// or overflow. `*overflow` tells the last apart from the others.
bool ParseInt(absl::string_view field, int64_t* value, bool* overflow) {
  const char* end = field.data() + field.size();
  auto [ptr, ec] = std::from_chars(field.data(), end, *value);
  *overflow = ec == std::errc::result_out_of_range;
  return ec == std::errc() && ptr == end;
}

// Ratings are almost always "4", "3.5" or "4.50". With at most 7 significant digits the mantissa
// and 10^k (k <= 10) are exact floats, so one correctly rounded division gives the correctly
// rounded value (Clinger's fast path). Anything else goes to std::from_chars. Returns false on a
// malformed field.
bool ParseRating(absl::string_view field, float* value) {
  constexpr float kPow10[] = {1e0f, 1e1f, 1e2f, 1e3f, 1e4f, 1e5f, 1e6f, 1e7f, 1e8f, 1e9f, 1e10f};
  uint32_t mantissa = 0;
  int digits = 0;
  int decimals = -1;  // digits after the point, -1 before a point is seen
  for (char c : field) {
    if (c >= '0' && c <= '9') {
      mantissa = mantissa * 10 + static_cast<uint32_t>(c - '0');
      ++digits;
      if (decimals >= 0) ++decimals;
    } else if (c == '.' && decimals < 0) {
      decimals = 0;
    } else {
      digits = 100;  // not plain decimal: take the slow path
      break;
    }
  }
  if (digits > 0 && digits <= 7 && decimals != 0) {
    *value = static_cast<float>(mantissa) / kPow10[std::max(decimals, 0)];
    return true;
  }
  const char* end = field.data() + field.size();
  auto [ptr, ec] = std::from_chars(field.data(), end, *value);
  return ec == std::errc() && ptr == end;
}

// Turns lines into Ratings and original ids into dense indices.
class LineParser {
 public:
  LineParser(Layout layout, const std::string& name, Dataset* out)
      : layout_(layout), separator_(Separator(layout)), name_(name), out_(out) {}

  // The fast path: the line at p in its common form, added; nullptr if it is not in that form.
  const char* Scan(const char* p, const char* end) {
    ScannedRating s;
    const char* next = ScanRatingLine(p, end, layout_, &s);
    if (next != nullptr) Add(s);
    return next;
  }

  absl::Status Parse(absl::string_view line, int64_t line_no) {
    std::array<absl::string_view, kFields> fields;
    if (!Split(line, &fields)) {
      return Error(line_no, "expected ", kFields, " fields separated by ", Quote(separator_),
                   " but found ", CountFields(line));
    }
    std::array<int64_t, 2> ids;
    for (int i = 0; i < 2; ++i) {
      bool overflow;
      if (!ParseInt(fields[i], &ids[i], &overflow)) {
        return Error(line_no, kFieldNames[i], " ", Quote(fields[i]),
                     overflow ? " is out of range" : " is not an integer");
      }
      if (ids[i] < 0) return Error(line_no, kFieldNames[i], " ", ids[i], " is negative");
    }
    ScannedRating r{ids[0], ids[1], 0, 0};
    if (!ParseRating(fields[2], &r.rating)) {
      return Error(line_no, "rating ", Quote(fields[2]), " is not a number");
    }
    if (!std::isfinite(r.rating)) {
      return Error(line_no, "rating ", Quote(fields[2]), " is not a finite number");
    }
    if (r.rating < kMinRating || r.rating > kMaxRating) {
      return Error(line_no, "rating ", fields[2], " is outside [", kMinRating, ", ", kMaxRating,
                   "]");
    }
    bool overflow;
    if (!ParseInt(fields[3], &r.timestamp, &overflow)) {
      return Error(line_no, "timestamp ", Quote(fields[3]),
                   overflow ? " is out of range" : " is not an integer");
    }
    Add(r);
    return absl::OkStatus();
  }

  template <typename... Args>
  absl::Status Error(int64_t line_no, const Args&... args) const {
    return absl::InvalidArgumentError(absl::StrCat(name_, ":", line_no, ": ", args...));
  }

 private:
  void Add(const ScannedRating& s) {
    // Rating files are usually grouped by user, so the previous user answers most lookups.
    if (s.user_id != last_user_id_) {
      last_user_id_ = s.user_id;
      last_user_ = users_.Get(s.user_id, &out_->user_ids);
    }
    out_->ratings.push_back(
        {last_user_, items_.Get(s.item_id, &out_->item_ids), s.rating, s.timestamp});
  }

  // string_view::find of a one-byte string is a general substring search; find(char) is memchr.
  size_t Find(absl::string_view line, size_t start) const {
    return separator_.size() == 1 ? line.find(separator_[0], start) : line.find(separator_, start);
  }

  bool Split(absl::string_view line, std::array<absl::string_view, kFields>* fields) const {
    size_t start = 0;
    for (int i = 0; i < kFields - 1; ++i) {
      size_t end = Find(line, start);
      if (end == absl::string_view::npos) return false;
      (*fields)[i] = line.substr(start, end - start);
      start = end + separator_.size();
    }
    (*fields)[kFields - 1] = line.substr(start);
    return Find(line, start) == absl::string_view::npos;
  }

  size_t CountFields(absl::string_view line) const {
    size_t count = 1;
    for (size_t pos = line.find(separator_); pos != absl::string_view::npos;
         pos = line.find(separator_, pos + separator_.size())) {
      ++count;
    }
    return count;
  }

  Layout layout_;
  absl::string_view separator_;
  const std::string& name_;
  Dataset* out_;
  IdIndex users_;
  IdIndex items_;
  int64_t last_user_id_ = -1;
  uint32_t last_user_ = 0;
};

// Returns the line starting at *pos without its "\n" or "\r\n", and moves *pos past it.
absl::string_view NextLine(absl::string_view text, size_t* pos) {
  size_t end = text.find('\n', *pos);
  if (end == absl::string_view::npos) end = text.size();
  absl::string_view line = text.substr(*pos, end - *pos);
  *pos = end + 1;
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  return line;
}

}  // namespace

absl::string_view LayoutName(Layout layout) {
  switch (layout) {
    case Layout::kCsv:
      return "ratings.csv";
    case Layout::kDat:
      return "ratings.dat";
    case Layout::kUData:
      return "u.data";
  }
  return "unknown";
}

absl::StatusOr<Dataset> ParseRatings(absl::string_view text, Layout layout,
                                     const std::string& name) {
  Dataset data;
  data.path = name;
  data.layout = layout;
  // A UTF-8 byte order mark is what a spreadsheet adds when it re-saves a file; it is not data.
  constexpr absl::string_view kBom = "\xEF\xBB\xBF";
  if (text.substr(0, kBom.size()) == kBom) text.remove_prefix(kBom.size());
  data.ratings.reserve(static_cast<size_t>(std::count(text.begin(), text.end(), '\n')) + 1);
  AdviseHugePages(data.ratings.data(), data.ratings.capacity() * sizeof(Rating));
  LineParser parser(layout, name, &data);
  size_t pos = 0;
  int64_t line_no = 0;
  if (layout == Layout::kCsv) {
    line_no = 1;
    absl::string_view header = NextLine(text, &pos);
    if (header != kCsvHeader) {
      return parser.Error(line_no, "expected the header ", Quote(kCsvHeader), " but found ",
                          Quote(header));
    }
  }
  const char* const end = text.data() + text.size();
  while (pos < text.size()) {
    ++line_no;
    if (const char* next = parser.Scan(text.data() + pos, end)) {
      pos = static_cast<size_t>(next - text.data());
      continue;
    }
    // Not the common form: the general parser takes it, or names what is wrong.
    absl::string_view line = NextLine(text, &pos);
    if (line.empty()) continue;
    absl::Status status = parser.Parse(line, line_no);
    if (!status.ok()) return status;
  }
  if (data.ratings.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(name, ": no ratings"));
  }
  if (data.ratings.size() > std::numeric_limits<uint32_t>::max()) {
    return absl::InvalidArgumentError(absl::StrCat(name, ": more than 2^32 - 1 ratings"));
  }
  return data;
}

absl::StatusOr<Dataset> ReadMovieLens(const std::string& dir) {
  const std::string looked_for = absl::StrCat(
      LayoutName(Layout::kCsv), ", ", LayoutName(Layout::kDat), ", ", LayoutName(Layout::kUData));
  struct stat st;
  if (stat(dir.c_str(), &st) != 0) {
    return absl::NotFoundError(absl::StrCat("MovieLens directory '", dir, "' (looking for ",
                                            looked_for, "): ", std::strerror(errno)));
  }
  if (!S_ISDIR(st.st_mode)) {
    return absl::InvalidArgumentError(absl::StrCat("MovieLens directory '", dir, "' (looking for ",
                                                   looked_for, ") is not a directory"));
  }
  for (Layout layout : kLayouts) {
    std::string path = JoinPath(dir, LayoutName(layout));
    if (stat(path.c_str(), &st) != 0) continue;
    absl::StatusOr<FileText> file = FileText::Read(path);
    if (!file.ok()) return file.status();
    return ParseRatings(file->text(), layout, path);
  }
  return absl::NotFoundError(
      absl::StrCat("no MovieLens rating file in '", dir, "': looked for ", looked_for));
}

}  // namespace psrec
