#include "common/movies.h"

#include <sys/stat.h>

#include <algorithm>
#include <charconv>
#include <iterator>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/files.h"

namespace psrec {
namespace {

constexpr absl::string_view kCsvHeader = "movieId,title,genres";
constexpr absl::string_view kNoGenres = "(no genres listed)";
constexpr absl::string_view kUtf8Bom = "\xEF\xBB\xBF";
// ml-100k's u.genre, in the order of u.item's flags.
constexpr absl::string_view kUItemGenres[] = {
    "unknown",     "Action", "Adventure", "Animation", "Children's", "Comedy",  "Crime",
    "Documentary", "Drama",  "Fantasy",   "Film-Noir", "Horror",     "Musical", "Mystery",
    "Romance",     "Sci-Fi", "Thriller",  "War",       "Western"};
constexpr size_t kUItemFields = 5 + std::size(kUItemGenres);
constexpr uint64_t kMaxMoviesFileBytes = uint64_t{1} << 30;

struct FileName {
  const char* name;
  MoviesLayout layout;
};
constexpr FileName kFiles[] = {{"movies.csv", MoviesLayout::kCsv},
                               {"movies.dat", MoviesLayout::kDat},
                               {"u.item", MoviesLayout::kUItem}};

// Field text for an error message: escaped, and cut short.
std::string Quote(absl::string_view field) {
  constexpr size_t kMaxShown = 40;
  return absl::StrCat("'", absl::CHexEscape(field.substr(0, kMaxShown)),
                      field.size() > kMaxShown ? "...'" : "'");
}

bool ParseId(absl::string_view field, int64_t* id) {
  const char* end = field.data() + field.size();
  auto [ptr, ec] = std::from_chars(field.data(), end, *id);
  return ec == std::errc() && ptr == end;
}

// One CSV line's fields with RFC 4180 quoting (a quoted field may hold commas and doubled quotes).
// An error says what is wrong.
absl::StatusOr<std::vector<std::string>> SplitCsvLine(absl::string_view line) {
  std::vector<std::string> fields(1);
  size_t i = 0;
  while (i <= line.size()) {
    std::string& field = fields.back();
    if (i < line.size() && line[i] == '"') {
      for (++i;; ++i) {
        if (i >= line.size()) return absl::InvalidArgumentError("a quoted field does not end");
        if (line[i] != '"') {
          field += line[i];
        } else if (i + 1 < line.size() && line[i + 1] == '"') {
          field += '"';
          ++i;
        } else {
          break;
        }
      }
      ++i;  // past the closing quote
      if (i < line.size() && line[i] != ',') {
        return absl::InvalidArgumentError("text follows a closing quote");
      }
    } else {
      const size_t comma = std::min(line.find(',', i), line.size());
      absl::StrAppend(&field, line.substr(i, comma - i));
      i = comma;
    }
    if (i >= line.size()) break;
    fields.emplace_back();
    ++i;  // past the comma
  }
  return fields;
}

std::vector<std::string> SplitGenres(absl::string_view genres) {
  if (genres.empty() || genres == kNoGenres) return {};
  return absl::StrSplit(genres, '|');
}

// Fills `movie` from one line of `layout`; an error says what is wrong with the line.
absl::Status ParseLine(absl::string_view line, MoviesLayout layout, Movie* movie) {
  absl::string_view id, title, genres;
  std::vector<std::string> csv;
  std::vector<absl::string_view> uitem;
  switch (layout) {
    case MoviesLayout::kCsv: {
      absl::StatusOr<std::vector<std::string>> fields = SplitCsvLine(line);
      if (!fields.ok()) return fields.status();
      csv = *std::move(fields);
      if (csv.size() != 3) {
        return absl::InvalidArgumentError(
            absl::StrCat("expected 3 fields (movieId,title,genres), found ", csv.size()));
      }
      id = csv[0], title = csv[1], genres = csv[2];
      break;
    }
    case MoviesLayout::kDat: {
      // The title sits between the first and the last "::", so a title holding one survives.
      const size_t first = line.find("::"), last = line.rfind("::");
      if (first == absl::string_view::npos || first == last) {
        return absl::InvalidArgumentError("expected MovieID::Title::Genres");
      }
      id = line.substr(0, first);
      title = line.substr(first + 2, last - first - 2);
      genres = line.substr(last + 2);
      break;
    }
    case MoviesLayout::kUItem:
      uitem = absl::StrSplit(line, '|');
      if (uitem.size() != kUItemFields) {
        return absl::InvalidArgumentError(
            absl::StrCat("expected ", kUItemFields, " '|'-separated fields, found ", uitem.size()));
      }
      id = uitem[0], title = uitem[1];
      break;
  }
  if (!ParseId(id, &movie->id)) {
    return absl::InvalidArgumentError(absl::StrCat("movie id ", Quote(id), " is not an integer"));
  }
  movie->title = std::string(title);
  if (layout != MoviesLayout::kUItem) {
    movie->genres = SplitGenres(genres);
    return absl::OkStatus();
  }
  movie->genres.clear();
  for (size_t g = 0; g < std::size(kUItemGenres); ++g) {
    const absl::string_view flag = uitem[5 + g];
    if (flag != "0" && flag != "1") {
      return absl::InvalidArgumentError(absl::StrCat("genre flag ", g + 1, " (", kUItemGenres[g],
                                                     ") is ", Quote(flag), ", not 0 or 1"));
    }
    if (flag == "1") movie->genres.emplace_back(kUItemGenres[g]);
  }
  return absl::OkStatus();
}

}  // namespace

const Movie* MovieCatalog::Find(int64_t id) const {
  const auto it = index.find(id);
  return it == index.end() ? nullptr : &movies[it->second];
}

bool IsValidUtf8(absl::string_view text) {
  size_t i = 0;
  while (i < text.size()) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    // The lead byte gives the length and the smallest code point that may use it.
    int extra;
    uint32_t code, min;
    if (c >= 0xC2 && c <= 0xDF) {
      extra = 1, code = c & 0x1F, min = 0x80;
    } else if (c >= 0xE0 && c <= 0xEF) {
      extra = 2, code = c & 0x0F, min = 0x800;
    } else if (c >= 0xF0 && c <= 0xF4) {
      extra = 3, code = c & 0x07, min = 0x10000;
    } else {
      return false;
    }
    if (text.size() - i <= static_cast<size_t>(extra)) return false;
    for (int k = 1; k <= extra; ++k) {
      const auto next = static_cast<unsigned char>(text[i + k]);
      if ((next & 0xC0) != 0x80) return false;
      code = (code << 6) | (next & 0x3F);
    }
    if (code < min || code > 0x10FFFF || (code >= 0xD800 && code <= 0xDFFF)) return false;
    i += 1 + extra;
  }
  return true;
}

std::string Latin1ToUtf8(absl::string_view text) {
  std::string out;
  out.reserve(text.size() + text.size() / 8);
  for (const char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    if (c < 0x80) {
      out += ch;
    } else {
      out += static_cast<char>(0xC0 | (c >> 6));
      out += static_cast<char>(0x80 | (c & 0x3F));
    }
  }
  return out;
}

std::string JoinGenres(const std::vector<std::string>& genres) {
  return genres.empty() ? std::string(kNoGenres) : absl::StrJoin(genres, "|");
}

absl::StatusOr<MovieCatalog> ParseMovies(absl::string_view text, MoviesLayout layout,
                                         const std::string& name) {
  MovieCatalog catalog;
  catalog.path = name;
  absl::ConsumePrefix(&text, kUtf8Bom);
  std::string converted;
  if (!IsValidUtf8(text)) {
    catalog.latin1 = true;
    converted = Latin1ToUtf8(text);
    text = converted;
  }
  const std::vector<absl::string_view> lines = absl::StrSplit(text, '\n');
  size_t first = 0;
  if (layout == MoviesLayout::kCsv) {
    if (lines.empty() || absl::StripSuffix(lines[0], "\r") != kCsvHeader) {
      return absl::InvalidArgumentError(absl::StrCat(name, ":1: expected the header '", kCsvHeader,
                                                     "', found ",
                                                     Quote(lines.empty() ? "" : lines[0])));
    }
    first = 1;
  }
  for (size_t n = first; n < lines.size(); ++n) {
    const absl::string_view line = absl::StripSuffix(lines[n], "\r");
    if (line.empty()) continue;
    Movie movie;
    if (absl::Status s = ParseLine(line, layout, &movie); !s.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(name, ":", n + 1, ": ", s.message()));
    }
    const auto [it, added] =
        catalog.index.emplace(movie.id, static_cast<uint32_t>(catalog.movies.size()));
    if (!added) {
      return absl::InvalidArgumentError(
          absl::StrCat(name, ":", n + 1, ": movie id ", movie.id, " is listed twice"));
    }
    catalog.movies.push_back(std::move(movie));
  }
  return catalog;
}

absl::StatusOr<MovieCatalog> ReadMovies(const std::string& dir) {
  for (const FileName& file : kFiles) {
    const std::string path = JoinPath(dir, file.name);
    struct stat st;
    if (stat(path.c_str(), &st) != 0) continue;
    absl::StatusOr<std::string> text = ReadFileToString(path, kMaxMoviesFileBytes);
    if (!text.ok()) return text.status();
    return ParseMovies(*text, file.layout, path);
  }
  return absl::NotFoundError(absl::StrCat(dir, " holds none of movies.csv, movies.dat or u.item"));
}

}  // namespace psrec
