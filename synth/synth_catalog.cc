#include "synth/synth_catalog.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "common/rng.h"
#include "synth/synth_model.h"

namespace psrec {
namespace synth {
namespace {

constexpr const char* kAdjectives[] = {
    "Silent",   "Broken",   "Golden",   "Last",     "Dark",    "Hidden",  "Lonely", "Crimson",
    "Endless",  "Wild",     "Frozen",   "Secret",   "Burning", "Little",  "Great",  "Lost",
    "Midnight", "Electric", "Savage",   "Quiet",    "Distant", "Bitter",  "Brave",  "Final",
    "Hollow",   "Lucky",    "Northern", "Restless", "Scarlet", "Strange", "Velvet", "Wicked"};
constexpr const char* kNouns[] = {
    "River",    "Harbor", "Kingdom", "Garden",  "Stranger", "Summer",    "Winter", "Road",
    "Island",   "Mirror", "Shadow",  "Promise", "Empire",   "Station",   "Letter", "Storm",
    "Heart",    "City",   "Forest",  "Machine", "Journey",  "Detective", "Dream",  "Horizon",
    "Frontier", "Circus", "Voyage",  "Orchard", "Tower",    "Game",      "Planet", "Witness",
    "Hunter",   "Song",   "Family",  "Engine",  "Valley",   "Window",    "Bridge", "Thief"};
constexpr const char* kSequels[] = {"II", "III", "IV", "2", "3"};

// The 19 genres of ml-20m and later, alphabetically, with relative weights roughly like a
// MovieLens catalogue's (drama and comedy most common, IMAX and film noir rare).
constexpr const char* kGenres[] = {"Action", "Adventure",   "Animation", "Children", "Comedy",
                                   "Crime",  "Documentary", "Drama",     "Fantasy",  "Film-Noir",
                                   "Horror", "IMAX",        "Musical",   "Mystery",  "Romance",
                                   "Sci-Fi", "Thriller",    "War",       "Western"};
constexpr uint32_t kGenreWeights[] = {70, 40, 30, 30, 160, 53, 56, 250, 27, 4,
                                      59, 2,  10, 29, 77,  36, 84, 19,  14};
constexpr int kNumGenres = sizeof(kGenres) / sizeof(kGenres[0]);
static_assert(kNumGenres == 19, "MovieLens has 19 genres");
static_assert(sizeof(kGenreWeights) / sizeof(kGenreWeights[0]) == kNumGenres, "a weight per genre");

template <typename T, size_t N>
const T& Pick(const T (&words)[N], Rng* rng) {
  return words[rng->Below(N)];
}

std::string Title(Rng* rng) {
  const std::string adjective = Pick(kAdjectives, rng), noun = Pick(kNouns, rng);
  const uint64_t form = rng->Below(100);
  if (form < 22) return absl::StrCat(adjective, " ", noun, ", The");
  if (form < 50) return absl::StrCat(adjective, " ", noun);
  if (form < 65) {
    return absl::StrCat(noun, " of the ", Pick(kAdjectives, rng), " ", Pick(kNouns, rng));
  }
  if (form < 80) return absl::StrCat(adjective, " ", noun, " ", Pick(kSequels, rng));
  if (form < 99) return absl::StrCat(noun, " and the ", Pick(kNouns, rng));
  return absl::StrCat("The \"", adjective, "\" ", noun);
}

// A CSV field: quoted, with quotes doubled, when it holds a comma or a quote.
std::string CsvField(const std::string& text) {
  if (text.find_first_of(",\"") == std::string::npos) return text;
  std::string quoted = "\"";
  for (char c : text) {
    quoted += c;
    if (c == '"') quoted += '"';
  }
  return quoted + "\"";
}

std::string Genres(Rng* rng) {
  if (rng->Below(100) < 3) return "(no genres listed)";
  const uint64_t roll = rng->Below(100);
  const int wanted = roll < 40 ? 1 : roll < 73 ? 2 : roll < 91 ? 3 : 4;
  uint32_t total = 0;
  for (uint32_t w : kGenreWeights) total += w;
  bool chosen[kNumGenres] = {};
  for (int n = 0; n < wanted;) {
    uint64_t r = rng->Below(total);
    int g = 0;
    while (r >= kGenreWeights[g]) r -= kGenreWeights[g++];
    if (!chosen[g]) {
      chosen[g] = true;
      ++n;
    }
  }
  std::string out;
  for (int g = 0; g < kNumGenres; ++g) {
    if (chosen[g]) absl::StrAppend(&out, out.empty() ? "" : "|", kGenres[g]);
  }
  return out;
}

}  // namespace

void AppendMovieLine(uint64_t seed, uint32_t index, uint32_t count, uint32_t id, int first_year,
                     int last_year, std::string* out) {
  Rng rng(Key(seed, kTitleStream, index));
  const double along = std::sqrt(static_cast<double>(index) / count);
  const int year = std::clamp(first_year + static_cast<int>(along * (last_year - first_year)) +
                                  static_cast<int>(rng.Below(3)) - 1,
                              first_year, last_year);
  const std::string title = absl::StrCat(Title(&rng), " (", year, ")");
  absl::StrAppend(out, id, ",", CsvField(title), ",", Genres(&rng), "\n");
}

}  // namespace synth
}  // namespace psrec
