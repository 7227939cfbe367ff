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
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/types/span.h"
#include "common/files.h"
#include "common/movielens_scan.h"

namespace psrec {
namespace {

constexpr int kFields = 4;
constexpr absl::string_view kCsvHeader = "userId,movieId,rating,timestamp";
constexpr absl::string_view kFieldNames[kFields] = {"userId", "movieId", "rating", "timestamp"};
constexpr Layout kLayouts[] = {Layout::kCsv, Layout::kDat, Layout::kUData};

// A layout's file name and field separator, in one switch so that a new layout cannot miss either.
struct LayoutText {
  absl::string_view name;
  absl::string_view separator;
};

LayoutText TextOf(Layout layout) {
  switch (layout) {
    case Layout::kCsv:
      return {"ratings.csv", ","};
    case Layout::kDat:
      return {"ratings.dat", "::"};
    case Layout::kUData:
      return {"u.data", "\t"};
  }
  return {"unknown", ","};
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

// Splits a line into its fields and parses each, naming what is wrong.
class LineFields {
 public:
  explicit LineFields(Layout layout) : separator_(TextOf(layout).separator) {}

  // Parses `line` (without its newline); on failure returns the message that follows "file:line: ".
  absl::StatusOr<ScannedRating> Parse(absl::string_view line) const {
    std::array<absl::string_view, kFields> fields;
    if (!Split(line, &fields)) {
      return Error("expected ", kFields, " fields separated by ", Quote(separator_), " but found ",
                   CountFields(line));
    }
    std::array<int64_t, 2> ids;
    for (int i = 0; i < 2; ++i) {
      bool overflow;
      if (!ParseInt(fields[i], &ids[i], &overflow)) {
        return Error(kFieldNames[i], " ", Quote(fields[i]),
                     overflow ? " is out of range" : " is not an integer");
      }
      if (ids[i] < 0) return Error(kFieldNames[i], " ", ids[i], " is negative");
    }
    ScannedRating r{ids[0], ids[1], 0, 0};
    if (!ParseRating(fields[2], &r.rating)) {
      return Error("rating ", Quote(fields[2]), " is not a number");
    }
    if (!std::isfinite(r.rating)) {
      return Error("rating ", Quote(fields[2]), " is not a finite number");
    }
    if (r.rating < kMinRating || r.rating > kMaxRating) {
      return Error("rating ", fields[2], " is outside [", kMinRating, ", ", kMaxRating, "]");
    }
    bool overflow;
    if (!ParseInt(fields[3], &r.timestamp, &overflow)) {
      return Error("timestamp ", Quote(fields[3]),
                   overflow ? " is out of range" : " is not an integer");
    }
    return r;
  }

 private:
  template <typename... Args>
  static absl::Status Error(const Args&... args) {
    return absl::InvalidArgumentError(absl::StrCat(args...));
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

  absl::string_view separator_;
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

// Turns original ids into dense indices as ratings arrive, in order of first appearance.
class DatasetBuilder {
 public:
  explicit DatasetBuilder(Dataset* out) : out_(out) {}

  void Add(absl::Span<const ScannedRating> batch) {
    for (const ScannedRating& s : batch) {
      // Rating files are usually grouped by user, so the previous user answers most lookups.
      if (s.user_id != last_user_id_) {
        last_user_id_ = s.user_id;
        last_user_ = users_.Get(s.user_id, &out_->user_ids);
      }
      out_->ratings.push_back(
          {last_user_, items_.Get(s.item_id, &out_->item_ids), s.rating, s.timestamp});
    }
  }

 private:
  Dataset* out_;
  IdIndex users_;
  IdIndex items_;
  int64_t last_user_id_ = -1;
  uint32_t last_user_ = 0;
};

}  // namespace

absl::string_view LayoutName(Layout layout) { return TextOf(layout).name; }

RatingParser::RatingParser(Layout layout, std::string name, bool half_stars)
    : layout_(layout), name_(std::move(name)), half_stars_(half_stars) {}

absl::StatusOr<bool> RatingParser::Start(absl::string_view text, bool last, size_t* pos) {
  // A UTF-8 byte order mark is what a spreadsheet adds when it re-saves a file; it is not data.
  constexpr absl::string_view kBom = "\xEF\xBB\xBF";
  if (text.size() < kBom.size() && !last && kBom.substr(0, text.size()) == text) return false;
  if (text.substr(0, kBom.size()) == kBom) *pos = kBom.size();
  if (layout_ == Layout::kCsv) {
    if (!last && text.find('\n', *pos) == absl::string_view::npos) return false;
    line_no_ = 1;
    const absl::string_view header = NextLine(text, pos);
    if (header != kCsvHeader) {
      return absl::InvalidArgumentError(absl::StrCat(
          name_, ":1: expected the header ", Quote(kCsvHeader), " but found ", Quote(header)));
    }
  }
  started_ = true;
  return true;
}

absl::StatusOr<size_t> RatingParser::Parse(absl::string_view text, bool last,
                                           std::vector<ScannedRating>* out) {
  size_t pos = 0;
  if (!started_) {
    absl::StatusOr<bool> started = Start(text, last, &pos);
    if (!started.ok()) return started.status();
    if (!*started) return 0;
    pos = std::min(pos, text.size());
  }
  // Only whole lines: up to the last newline, or everything at the end of the file.
  const size_t newline = text.rfind('\n');
  const size_t whole = last ? text.size() : newline == absl::string_view::npos ? 0 : newline + 1;
  if (whole <= pos) return last ? text.size() : pos;
  const absl::string_view lines = text.substr(0, whole);
  const char* const end = lines.data() + lines.size();
  const LineFields fields(layout_);
  while (pos < lines.size()) {
    ++line_no_;
    ScannedRating s;
    if (const char* next = ScanRatingLine(lines.data() + pos, end, layout_, &s)) {
      pos = static_cast<size_t>(next - lines.data());
    } else {
      // Not the common form: the general parser takes it, or names what is wrong.
      const absl::string_view line = NextLine(lines, &pos);
      if (line.empty()) continue;
      absl::StatusOr<ScannedRating> parsed = fields.Parse(line);
      if (!parsed.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat(name_, ":", line_no_, ": ", parsed.status().message()));
      }
      s = *parsed;
    }
    if (half_stars_ && 2.0f * s.rating != std::round(2.0f * s.rating)) {
      return absl::InvalidArgumentError(absl::StrCat(
          name_, ":", line_no_, ": rating ", s.rating,
          " is not a whole number of half stars, which is all that prepared shares hold"));
    }
    out->push_back(s);
  }
  return whole;
}

absl::StatusOr<Dataset> ParseRatings(absl::string_view text, Layout layout,
                                     const std::string& name) {
  Dataset data;
  data.path = name;
  data.layout = layout;
  data.ratings.reserve(static_cast<size_t>(std::count(text.begin(), text.end(), '\n')) + 1);
  AdviseHugePages(data.ratings.data(), data.ratings.capacity() * sizeof(Rating));
  RatingParser parser(layout, name);
  DatasetBuilder builder(&data);
  // The text passes through the parser a window at a time, so that the parsed lines in flight stay
  // small beside the rows.
  constexpr size_t kWindow = size_t{1} << 20;
  std::vector<ScannedRating> batch;
  for (size_t pos = 0, window = kWindow;;) {
    const bool last = text.size() - pos <= window;
    absl::StatusOr<size_t> used = parser.Parse(text.substr(pos, window), last, &batch);
    if (!used.ok()) return used.status();
    builder.Add(batch);
    batch.clear();
    pos += *used;
    if (last) break;
    window = *used == 0 ? 2 * window : kWindow;  // a line longer than the window
  }
  if (data.ratings.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(name, ": no ratings"));
  }
  if (data.ratings.size() > std::numeric_limits<uint32_t>::max()) {
    return absl::InvalidArgumentError(absl::StrCat(name, ": more than 2^32 - 1 ratings"));
  }
  return data;
}

absl::StatusOr<RatingFile> FindRatingFile(const std::string& dir) {
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
    if (stat(path.c_str(), &st) == 0) return RatingFile{path, layout};
  }
  return absl::NotFoundError(
      absl::StrCat("no MovieLens rating file in '", dir, "': looked for ", looked_for));
}

absl::StatusOr<Dataset> ReadMovieLens(const std::string& dir) {
  absl::StatusOr<RatingFile> found = FindRatingFile(dir);
  if (!found.ok()) return found.status();
  absl::StatusOr<FileText> file = FileText::Read(found->path);
  if (!file.ok()) return file.status();
  return ParseRatings(file->text(), found->layout, found->path);
}

}  // namespace psrec
