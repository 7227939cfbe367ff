// movies.csv of a generated set (common/synth.h): the header "movieId,title,genres" and a line per
// movie. A title is made of words and ends with the film's year, "(1994)"; about a fifth carry
// MovieLens's trailing article ("Silent Harbor, The (1987)") and one in a hundred a quoted word,
// so titles are quoted where they hold a comma or a quote, quotes doubled. Genres are 1 to 4 of
// the 19 MovieLens genres in alphabetical order joined by '|', or "(no genres listed)" for about
// one movie in thirty. Years grow along the catalogue, as MovieLens's ids do.
#ifndef PSREC_SYNTH_SYNTH_CATALOG_H_
#define PSREC_SYNTH_SYNTH_CATALOG_H_

#include <cstdint>
#include <string>

namespace psrec {
namespace synth {

constexpr char kMoviesHeader[] = "movieId,title,genres\n";

// Appends the line (with its '\n') of movie `index` of `count`, whose id is `id`, released between
// first_year and last_year. A pure function of (seed, index).
void AppendMovieLine(uint64_t seed, uint32_t index, uint32_t count, uint32_t id, int first_year,
                     int last_year, std::string* out);

}  // namespace synth
}  // namespace psrec

#endif  // PSREC_SYNTH_SYNTH_CATALOG_H_
